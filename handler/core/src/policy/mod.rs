//! The delivery policy: which deliveries a webhook takes (`filter`, whose patterns have the shape of `pattern`), what an answer means (`outcome`), when to
//! try again (`retry`), how fast a webhook is sent to (`rate`), when to disable a failing webhook (`health`), how a delivery is signed (`signing`), and which targets a delivery may reach (`targets`).

pub mod filter;
pub mod health;
pub mod outcome;
pub mod pattern;
pub mod rate;
pub mod retry;
pub mod signing;
pub mod targets;
