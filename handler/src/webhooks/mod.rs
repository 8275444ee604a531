//! Webhooks: their configuration, which public events reach them, and the body they receive.

pub mod body;
pub mod config;
pub mod routing;

pub use body::delivery_body;
pub use config::WebhookConfig;
pub use routing::{receives, WebhookIndex};

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A registered webhook: its id and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Shared: every delivery names its webhook, and cloning the id must not cost an allocation.
    pub id: Arc<str>,
    #[serde(flatten)]
    pub config: WebhookConfig,
}
