//! Callbacks to a webhook's owner: `Callback` after a successful delivery (to `callbackUrl`), `DeliveryFailure`
//! when one is given up and `WebhookDisabled` when the dispatcher disables the webhook (to
//! `failureCallbackUrl`). Each is a delivery of its own, whose event is its `callbackType`: queued, signed with
//! the webhook's secrets, authenticated with `callbackAuth`, retried on the webhook's schedule and logged like
//! any delivery. It never changes the delivery it is about.

use crate::dispatch::{self, Source};
pub use crate::model::CallbackType;
use crate::model::{Delivery, Webhook};
use serde_json::{json, Value};

/// How much of a receiver's answer a `Callback` carries.
pub const RESPONSE_KEPT: usize = 64 * 1024;

/// The `Callback` of `delivery`, which `webhook` answered with `status_code` and `response` (its body), when the
/// webhook has a `callbackUrl`.
pub fn success(delivery: &Delivery, webhook: &Webhook, status_code: u16, response: &str) -> Option<Delivery> {
    webhook.config.callback_url.as_ref()?;
    let response = truncated(response, RESPONSE_KEPT);
    let response = serde_json::from_str::<Value>(response).unwrap_or_else(|_| Value::String(response.to_owned()));
    let body = [("statusCode", json!(status_code)), ("response", response)];
    Some(about(delivery, webhook, CallbackType::Callback, body))
}

/// The `DeliveryFailure` callback of a delivery given up after `attempts` attempts (the last answered
/// `status_code`), when its webhook has a `failureCallbackUrl`.
pub fn failure(delivery: &Delivery, webhook: &Webhook, attempts: u32, status_code: Option<u16>) -> Option<Delivery> {
    webhook.config.failure_callback_url.as_ref()?;
    let body = [("statusCode", json!(status_code)), ("attempts", json!(attempts))];
    Some(about(delivery, webhook, CallbackType::DeliveryFailure, body))
}

/// The `WebhookDisabled` callback of a webhook the dispatcher disabled at `disabled_at` (RFC 3339), when it has
/// a `failureCallbackUrl`.
pub fn disabled(webhook: &Webhook, reason: &str, disabled_at: &str) -> Option<Delivery> {
    webhook.config.failure_callback_url.as_ref()?;
    let kind = CallbackType::WebhookDisabled;
    let body = json!({
        "callbackType": kind.as_str(),
        "webhookId": webhook.id.as_str(),
        "reason": reason,
        "disabledAt": disabled_at,
    });
    let source = Source {
        id: format!("{}/{}/{disabled_at}", webhook.id, kind.as_str()),
        correlation_id: None,
        traceparent: None,
    };
    Some(dispatch::callback(&source, &webhook.id, kind, body.to_string()))
}

/// A callback about `delivery`, telling `facts` besides which delivery it is: its id derives from the
/// delivery's, so that making it again makes the same one.
fn about<const N: usize>(
    delivery: &Delivery,
    webhook: &Webhook,
    kind: CallbackType,
    facts: [(&str, Value); N],
) -> Delivery {
    let mut body = json!({
        "callbackType": kind.as_str(),
        "deliveryId": delivery.id,
        "webhookId": webhook.id.as_str(),
        "eventType": delivery.event,
        "payload": payload(delivery),
    });
    for (name, value) in facts {
        body[name] = value;
    }
    let source = Source {
        id: format!("{}/{}", delivery.id, kind.as_str()),
        correlation_id: delivery.correlation_id.clone(),
        traceparent: delivery.traceparent.clone(),
    };
    dispatch::callback(&source, &webhook.id, kind, body.to_string())
}

/// The `payload` of a delivery's body.
fn payload(delivery: &Delivery) -> Value {
    serde_json::from_str::<Value>(&delivery.body).ok().and_then(|body| body.get("payload").cloned()).unwrap_or_default()
}

/// The first `max` bytes of `text`, cut at a character boundary.
pub fn truncated(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enricher_reads_no_more_of_an_answer_than_the_sender_keeps() {
        assert_eq!(crate::events::enricher::MAX_ANSWER_BYTES, RESPONSE_KEPT);
    }
    use crate::model::{Secret, WebhookConfig};

    fn webhook(callback: Option<&str>, failure: Option<&str>) -> Webhook {
        let config = WebhookConfig {
            url: "https://a.example".into(),
            subscriptions: vec!["ping".into()],
            callback_url: callback.map(str::to_owned),
            failure_callback_url: failure.map(str::to_owned),
            ..Default::default()
        };
        Webhook::new("wh1".into(), config, Secret::from_key(&[1; 32]), 0)
    }

    fn delivery() -> Delivery {
        Delivery { correlation_id: Some("corr".into()), ..Delivery::example() }
    }

    fn body(delivery: &Delivery) -> Value {
        serde_json::from_str(&delivery.body).unwrap()
    }

    #[test]
    fn a_success_callback_carries_the_answer_as_json_or_text() {
        assert_eq!(success(&delivery(), &webhook(None, Some("https://a.example/f")), 200, "{}"), None);
        let hook = webhook(Some("https://a.example/done"), None);
        let callback = success(&delivery(), &hook, 201, r#"{"accepted": true}"#).unwrap();
        assert_eq!(callback.callback, Some(CallbackType::Callback));
        assert_eq!(CallbackType::Callback.url(&hook.config), Some("https://a.example/done"));
        assert_eq!((callback.webhook_id.as_str(), callback.correlation_id.as_deref()), ("wh1", Some("corr")));
        assert_eq!(
            body(&callback),
            json!({"callbackType": "Callback", "deliveryId": "dlv_0123456789abcdef0123456789abcdef", "webhookId": "wh1",
                "eventType": "ping", "payload": {"n": 1}, "statusCode": 201, "response": {"accepted": true}})
        );
        assert_eq!(
            success(&delivery(), &hook, 201, r#"{"accepted": true}"#).unwrap().id,
            callback.id,
            "made again alike"
        );
        assert_ne!(callback.id, delivery().id);
        let long = "é".repeat(RESPONSE_KEPT);
        let text = success(&delivery(), &hook, 200, &long).unwrap();
        let response = body(&text)["response"].as_str().unwrap().to_owned();
        assert_eq!((response.len(), response.chars().all(|c| c == 'é')), (RESPONSE_KEPT, true));
    }

    #[test]
    fn the_failure_and_disabled_callbacks_go_to_the_failure_url() {
        assert_eq!(failure(&delivery(), &webhook(Some("https://a.example/done"), None), 3, Some(503)), None);
        let hook = webhook(None, Some("https://a.example/failed"));
        let callback = failure(&delivery(), &hook, 3, Some(503)).unwrap();
        assert_eq!(callback.callback.and_then(|k| k.url(&hook.config)), Some("https://a.example/failed"));
        assert_eq!(
            body(&callback),
            json!({"callbackType": "DeliveryFailure", "deliveryId": "dlv_0123456789abcdef0123456789abcdef",
                "webhookId": "wh1", "eventType": "ping", "payload": {"n": 1}, "statusCode": 503, "attempts": 3})
        );
        let off = disabled(&hook, "HTTP 410", "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(off.callback, Some(CallbackType::WebhookDisabled));
        assert_eq!(body(&off)["reason"], "HTTP 410");
        assert_eq!(delivery().callback, None);
    }

    #[test]
    fn no_event_of_the_catalog_is_named_like_a_callback() {
        // Records written before deliveries carried their kind are told apart by name (`model::Delivery`).
        for event in &crate::events::catalog::current().events {
            assert_eq!(CallbackType::parse(&event.name), None, "{}", event.name);
        }
    }
}
