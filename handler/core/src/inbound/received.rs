//! Received events: what a source publishes, `<sourceId>:<provider event type>` with the provider's body as its
//! payload, and how webhooks subscribe to them (by name, or every event of a source with `<sourceId>:*`).
//!
//! On a queue (Service Bus, the local waiting events) a received event is the message
//! `{"name": "stripe:customer.updated", "receivedFrom": "stripe", "payload": <the provider's body>}`: the
//! `receivedFrom` member is what lets a name outside the catalog through decoding, so that a producer's typo in
//! an internal event's name is still refused.

use super::verify::MAX_TYPE_CHARS;
use crate::events::catalog;
use serde_json::Value;

/// The member of an event message that says which source received it.
pub const RECEIVED_FROM: &str = "receivedFrom";

/// A subscription to every event of a source ends with this.
pub const EVERY: &str = "*";

/// Whether `id` can name a source: 1 to 64 ASCII letters, digits, `-` or `_` (it starts its events' names).
pub fn valid_source_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// Whether an event type can follow a source's id in a name: 1 to 200 printable ASCII characters.
pub fn valid_event_type(event_type: &str) -> bool {
    (1..=MAX_TYPE_CHARS).contains(&event_type.len()) && event_type.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether a subscription names received events (`stripe:customer.updated`, `stripe:*`) rather than a catalog
/// event: a source's id, a colon, a type or `*`, in a namespace no catalog event uses (the catalog owns its
/// namespaces: `profile:completedd` stays a typo, not a source's event).
pub fn is_received(subscription: &str) -> bool {
    let Some((source, event_type)) = subscription.split_once(':') else { return false };
    let owned_by_catalog =
        catalog::current().events.iter().any(|e| e.name.split_once(':').is_some_and(|(ns, _)| ns == source));
    valid_source_id(source) && (event_type == EVERY || valid_event_type(event_type)) && !owned_by_catalog
}

/// What [`is_received`] takes, as a JSON Schema pattern (ECMA 262), for the current catalog.
pub fn subscription_pattern() -> String {
    let mut namespaces: Vec<&str> =
        catalog::current().events.iter().filter_map(|e| e.name.split_once(':').map(|(ns, _)| ns)).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    let owned = match namespaces.is_empty() {
        true => String::new(),
        false => format!("(?!({}):)", namespaces.iter().map(|ns| regex_escape(ns)).collect::<Vec<_>>().join("|")),
    };
    format!("^{owned}[A-Za-z0-9_-]{{1,64}}:(\\*|[!-~]{{1,{MAX_TYPE_CHARS}}})$")
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_ascii_alphanumeric() { vec![c] } else { vec!['\\', c] }).collect()
}

/// `stripe:customer.updated` → `stripe:*`.
pub fn every_of(name: &str) -> Option<String> {
    name.split_once(':').map(|(source, _)| format!("{source}:{EVERY}"))
}

/// Whether `subscriptions` take the received event `name`.
pub fn subscribed(subscriptions: &[String], name: &str) -> bool {
    let every = every_of(name);
    subscriptions.iter().any(|s| s == name || every.as_deref() == Some(s.as_str()))
}

/// The event message of a received request: its exact body (valid JSON, checked before) as the payload.
pub fn message(source: &str, event_type: &str, body: &[u8]) -> Vec<u8> {
    let name = Value::from(format!("{source}:{event_type}")).to_string();
    let from = Value::from(source).to_string();
    let mut message = Vec::with_capacity(body.len() + name.len() + from.len() + 48);
    message.extend_from_slice(format!("{{\"name\":{name},\"{RECEIVED_FROM}\":{from},\"payload\":").as_bytes());
    message.extend_from_slice(body);
    message.push(b'}');
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_subscriptions_are_told_from_catalog_events() {
        assert!(is_received("stripe:customer.updated") && is_received("stripe:*") && is_received("gh:push"));
        // The built-in catalog's namespaces are its own.
        assert!(!is_received("profile:completedd") && !is_received("service:subscribed"));
        assert!(!is_received("ping") && !is_received("a b:x") && !is_received("stripe:") && !is_received(":x"));
        assert!(!is_received(&format!("s:{}", "x".repeat(201))));
        assert_eq!(every_of("stripe:customer.updated").as_deref(), Some("stripe:*"));
        let subscriptions = ["stripe:*".to_owned(), "gh:push".to_owned()];
        assert!(subscribed(&subscriptions, "stripe:invoice.paid") && subscribed(&subscriptions, "gh:push"));
        assert!(!subscribed(&subscriptions, "gh:issues") && !subscribed(&subscriptions, "stripes:x"));
    }

    #[test]
    fn a_received_message_carries_the_exact_body() {
        let message = message("gh", "pu\"sh", br#"{"a": 1.50, "b" : [ ]}"#);
        assert_eq!(
            std::str::from_utf8(&message).unwrap(),
            r#"{"name":"gh:pu\"sh","receivedFrom":"gh","payload":{"a": 1.50, "b" : [ ]}}"#
        );
        let parsed: Value = serde_json::from_slice(&message).unwrap();
        assert_eq!(parsed["payload"]["a"], 1.5);
    }
}
