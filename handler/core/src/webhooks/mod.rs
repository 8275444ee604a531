//! Webhooks as the core sees them: decoding a registration (`registration`), which public events reach which
//! webhooks (`routing`), and the exact body each receives (`body`).

pub mod body;
mod credentials;
mod fields;
pub mod registration;
pub mod routing;

pub use body::delivery_body;
pub(crate) use credentials::decode_auth;
pub use routing::{receives, WebhookIndex};
