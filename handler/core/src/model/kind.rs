//! What a delivery carries: a public event for its webhook's URL, or a callback to the webhook's owner
//! (`crate::callback` makes them). Carried by every delivery, so that nothing tells one from the other by name.

use super::WebhookConfig;
use serde::{Deserialize, Serialize};

/// What a callback tells; its name is the body's `callbackType` and the callback delivery's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CallbackType {
    /// A delivery succeeded: the receiver's answer.
    Callback,
    DeliveryFailure,
    WebhookDisabled,
}

impl CallbackType {
    pub const ALL: [CallbackType; 3] =
        [CallbackType::Callback, CallbackType::DeliveryFailure, CallbackType::WebhookDisabled];

    pub fn as_str(self) -> &'static str {
        match self {
            CallbackType::Callback => "Callback",
            CallbackType::DeliveryFailure => "DeliveryFailure",
            CallbackType::WebhookDisabled => "WebhookDisabled",
        }
    }

    pub fn parse(text: &str) -> Option<CallbackType> {
        CallbackType::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Why it is not sent: the webhook field that held its URL was removed since it was made.
    pub fn url_gone(self) -> String {
        let field = match self {
            CallbackType::Callback => "callbackUrl",
            CallbackType::DeliveryFailure | CallbackType::WebhookDisabled => "failureCallbackUrl",
        };
        format!("the webhook has no {field} any more")
    }

    /// Where a webhook wants this callback, if it still does.
    pub fn url(self, config: &WebhookConfig) -> Option<&str> {
        match self {
            CallbackType::Callback => config.callback_url.as_deref(),
            CallbackType::DeliveryFailure | CallbackType::WebhookDisabled => config.failure_callback_url.as_deref(),
        }
    }
}
