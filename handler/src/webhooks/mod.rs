//! Webhooks: their configuration, which public events reach them, and the body they receive.

pub mod body;
pub mod config;
pub mod routing;

pub use body::delivery_body;
pub use config::WebhookConfig;
pub use routing::{receives, WebhookIndex};

use serde::{Deserialize, Serialize};

/// A registered webhook: its id and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    #[serde(flatten)]
    pub config: WebhookConfig,
}
