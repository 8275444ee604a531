//! The delivery policy: what an answer means (`outcome`), when to try again (`retry`), how a delivery is signed
//! (`signing`), and which targets a delivery may reach (`targets`).

pub mod outcome;
pub mod retry;
pub mod signing;
pub mod targets;
