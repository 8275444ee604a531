//! The pure core: an incoming event and the webhooks in, the deliveries to make out.
//!
//! Deterministic by construction: the same source message, event and webhooks always give the same deliveries
//! with the same ids, so a redelivered message (Service Bus is at-least-once) yields the same `webhook-id`
//! headers and integrators can deduplicate.

use crate::events::{public_events, Event};
use crate::webhooks::body::event_json;
use crate::webhooks::{delivery_body, WebhookIndex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// One HTTP request to make: which webhook, which public event, and the exact body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: String,
    pub event: &'static str,
    pub body: Vec<u8>,
}

/// A delivery's id: `dlv_` and 32 hex digits, derived from the source message id, the public event (name and
/// payload) and the webhook id. Sent as `webhook-id`, the receiver's idempotency key; contains no `.` as
/// Standard Webhooks requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(String);

impl DeliveryId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for DeliveryId {
    fn from(id: String) -> Self {
        DeliveryId(id)
    }
}

/// The deliveries `event` (from the message `source_id`) makes to `webhooks`: for each public event it stands
/// for, one delivery to each webhook that receives it, in webhook order.
pub fn dispatch(source_id: &str, event: &Event, webhooks: &WebhookIndex) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for public in public_events(event, |attribute| webhooks.attribute_values(attribute)) {
        let ids = IdSeed::new(source_id, &public);
        deliveries.extend(webhooks.recipients(&public).map(|webhook| Delivery {
            id: ids.for_webhook(&webhook.id),
            webhook_id: webhook.id.clone(),
            event: public.name(),
            body: delivery_body(&public, &webhook.config.attributes),
        }));
    }
    deliveries
}

/// The hash of everything but the webhook id, computed once per public event and extended per webhook.
struct IdSeed(Sha256);

impl IdSeed {
    fn new(source_id: &str, event: &Event) -> Self {
        let mut hash = Sha256::new();
        for part in [
            b"dispatcher-delivery-v1".as_slice(),
            source_id.as_bytes(),
            &event_json(event),
        ] {
            // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        IdSeed(hash)
    }

    fn for_webhook(&self, webhook_id: &str) -> DeliveryId {
        let mut hash = self.0.clone();
        hash.update((webhook_id.len() as u64).to_le_bytes());
        hash.update(webhook_id.as_bytes());
        let digest = hash.finalize();
        let mut id = String::with_capacity(36);
        id.push_str("dlv_");
        for byte in &digest[..16] {
            id.push(char::from(b"0123456789abcdef"[(byte >> 4) as usize]));
            id.push(char::from(b"0123456789abcdef"[(byte & 0xf) as usize]));
        }
        DeliveryId(id)
    }
}
