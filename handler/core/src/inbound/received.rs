//! Received events: what a source publishes, `<sourceId>:<provider event type>` with the provider's body as its
//! payload, and how webhooks subscribe to them (by name, or every event of a source with `<sourceId>:*`).
//!
//! On a queue (Service Bus, the local waiting events) a received event is the message
//! `{"name": "stripe:customer.updated", "receivedFrom": "stripe", "payload": <the provider's body>}`: the
//! `receivedFrom` member is what lets a name outside the catalog through decoding, so that a producer's typo in
//! an internal event's name is still refused.

use crate::events::catalog;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The member of an event message that says which source received it.
pub const RECEIVED_FROM: &str = "receivedFrom";

/// The longest event type taken: it names an event (`<source>:<type>`), and a subscription.
pub const MAX_TYPE_CHARS: usize = 200;

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
/// event: a source's id, a colon, a type or `*`, and no event of the catalog.
pub fn is_received(subscription: &str) -> bool {
    let Some((source, event_type)) = subscription.split_once(':') else { return false };
    let valid = valid_source_id(source) && (event_type == EVERY || valid_event_type(event_type));
    valid && catalog::current().event(subscription).is_none()
}

/// The namespace of a received subscription when the catalog's events use it too (`profile` for
/// `profile:completedd`): then only a source of that id makes it one, otherwise it is a catalog event mistyped.
pub fn catalog_namespace(subscription: &str) -> Option<&str> {
    let (namespace, _) = subscription.split_once(':')?;
    let mut namespaces = catalog::current().events.iter().filter_map(|e| e.name.split_once(':'));
    namespaces.any(|(ns, _)| ns == namespace).then_some(namespace)
}

/// What [`is_received`] takes, as a JSON Schema pattern (ECMA 262), for the current catalog (the catalog's
/// namespaces included: whether a source holds one is for the stored sources to say).
pub fn subscription_pattern() -> String {
    let names: Vec<String> = catalog::current().events.iter().map(|e| regex_escape(&e.name)).collect();
    let owned = match names.is_empty() {
        true => String::new(),
        false => format!("(?!({})$)", names.join("|")),
    };
    format!("^{owned}[A-Za-z0-9_-]{{1,64}}:(\\*|[!-~]{{1,{MAX_TYPE_CHARS}}})$")
}

/// Escapes what ECMA 262 reads as syntax, and nothing else: an escaped `:` or `-` is an error under the `u` flag.
fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if r"\^$.|?*+()[]{}/".contains(c) { vec!['\\', c] } else { vec![c] }).collect()
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

/// What a request is recognised by when it comes again: the provider's event id when the signature covers it,
/// the SHA-256 of its body otherwise (an id in an unsigned header could be changed on a replay).
pub fn repeat_key(event_id: Option<&str>, id_signed: bool, body: &[u8]) -> String {
    match (event_id, id_signed) {
        (Some(id), true) => format!("id:{id}"),
        _ => format!("body:{}", hex::encode(Sha256::digest(body))),
    }
}

/// The id of the event source `source` publishes for the request known by `key`: the same for every repeat, so
/// that a repeat published again (after a crash, or racing the first) makes the same deliveries.
pub fn event_id(source: &str, key: &str) -> String {
    let digest = Sha256::new().chain_update(source).chain_update([0]).chain_update(key).finalize();
    format!("in_{}", hex::encode(&digest[..16]))
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
        // The built-in catalog's events are its own; its namespaces are too, unless a source takes one.
        assert!(!is_received("profile:completed") && !is_received("service:subscribed"));
        assert!(is_received("profile:completedd") && catalog_namespace("profile:completedd") == Some("profile"));
        assert_eq!(catalog_namespace("stripe:*"), None);
        assert!(!is_received("ping") && !is_received("a b:x") && !is_received("stripe:") && !is_received(":x"));
        assert!(!is_received("ping:all"), "a non-public event of the catalog");
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
