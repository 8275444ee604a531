//! The pure core: an incoming event and the webhooks in, the deliveries to make out.
//!
//! Deterministic by construction: the same source message, event and webhooks always give the same deliveries
//! with the same ids, so a redelivered message (Service Bus is at-least-once) yields the same `webhook-id`
//! headers and integrators can deduplicate.

use crate::events::{public_events, Event};
use crate::webhooks::{delivery_body, WebhookIndex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// One HTTP request to make: which webhook, which public event, and the exact body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: Arc<str>,
    pub event: &'static str,
    pub body: Vec<u8>,
}

/// A delivery's id: `dlv_` and 32 hex digits, derived from the source message id, the webhook id and the body
/// it receives (which, for one webhook, tells its public events apart). Sent as `webhook-id`, the receiver's
/// idempotency key; contains no `.` as Standard Webhooks requires. Held inline: making one allocates nothing.
///
/// The first 16 digits come from the source message alone, so the deliveries of one message sort together in
/// the store's index of ids: with random ids, each of an event's deliveries dirtied a page of that index of its
/// own, which SQLite writes whole at every commit (see `IdSeed`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId([u8; DeliveryId::LEN]);

impl DeliveryId {
    const PREFIX: &'static str = "dlv_";
    const LEN: usize = 36;

    pub fn as_str(&self) -> &str {
        // Only built from ASCII: by `IdSeed::for_webhook` and by `parse`, which checks.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Reads an id back (from a URL, a store, a queue message); `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<DeliveryId> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        let valid = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| DeliveryId(text.as_bytes().try_into().unwrap_or([0; Self::LEN])))
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DeliveryId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a delivery id (dlv_ and 32 hex digits)")))
    }
}

/// The deliveries `event` (from the message `source_id`) makes to `webhooks`: for each public event it stands
/// for, one delivery to each webhook that receives it, in webhook order.
pub fn dispatch(source_id: &str, event: &Event, webhooks: &WebhookIndex) -> Vec<Delivery> {
    let ids = IdSeed::new(source_id);
    let mut deliveries = Vec::new();
    for public in public_events(event, |attribute| webhooks.attribute_values(attribute)) {
        deliveries.extend(webhooks.recipients(&public).map(|webhook| {
            let body = delivery_body(&public, &webhook.config.attributes);
            Delivery {
                id: ids.delivery_id(&webhook.id, &body),
                webhook_id: webhook.id.clone(),
                event: public.name(),
                body,
            }
        }));
    }
    deliveries
}

/// The id of a delivery of `body` to one webhook, for deliveries made outside [`dispatch`] (a ping).
pub fn delivery_id(source_id: &str, webhook_id: &str, body: &[u8]) -> DeliveryId {
    IdSeed::new(source_id).delivery_id(webhook_id, body)
}

/// An id has two halves of 8 bytes. The message's half is FNV-1a (64-bit, big-endian) of the source message id:
/// it only sorts one message's deliveries together, and costs a tenth of a second SHA-256 per event. The
/// delivery's half is the first 8 bytes of SHA-256 over parts each preceded by its length as u32 LE (so ("ab",
/// "c") and ("a", "bc") differ): the version tag `dlv2`, the source message id, the webhook id and the body. Two
/// deliveries of one message collide only when 64 bits of their SHA-256 do. Kept short so that a typical
/// delivery hashes two blocks.
struct IdSeed {
    source: Sha256,
    source_half: [u8; 8],
}

impl IdSeed {
    fn new(source_id: &str) -> Self {
        let mut source = Sha256::new();
        for part in [b"dlv2".as_slice(), source_id.as_bytes()] {
            hash_part(&mut source, part);
        }
        IdSeed { source, source_half: fnv1a(source_id.as_bytes()).to_be_bytes() }
    }

    fn delivery_id(&self, webhook_id: &str, body: &[u8]) -> DeliveryId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hash = self.source.clone();
        for part in [webhook_id.as_bytes(), body] {
            hash_part(&mut hash, part);
        }
        let digest = hash.finalize();
        let mut id = [0u8; DeliveryId::LEN];
        id[..4].copy_from_slice(DeliveryId::PREFIX.as_bytes());
        for (i, byte) in self.source_half.iter().chain(&digest[..8]).enumerate() {
            id[4 + 2 * i] = HEX[(byte >> 4) as usize];
            id[5 + 2 * i] = HEX[(byte & 0xf) as usize];
        }
        DeliveryId(id)
    }
}

/// FNV-1a, 64-bit: a stable hash that anyone can recompute.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn hash_part(hash: &mut Sha256, part: &[u8]) {
    hash.update((part.len() as u32).to_le_bytes());
    hash.update(part);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_half_is_fnv1a() {
        // The FNV-1a 64 test vectors of its authors.
        assert_eq!(
            (fnv1a(b""), fnv1a(b"a"), fnv1a(b"foobar")),
            (0xcbf29ce484222325, 0xaf63dc4c8601ec8c, 0x85944171f73967e8)
        );
        assert_eq!(&IdSeed::new("a").delivery_id("w", b"{}").as_str()[4..20], "af63dc4c8601ec8c");
    }

    #[test]
    fn ids_read_back_only_when_they_are_ours() {
        let id = IdSeed::new("m").delivery_id("w", b"{}");
        assert_eq!(DeliveryId::parse(id.as_str()), Some(id));
        assert_eq!(serde_json::from_value::<DeliveryId>(serde_json::to_value(id).unwrap()).unwrap(), id);
        for bad in [
            "",
            "dlv_",
            "dlv_0240E71360DE434C9D3BCA3460D5C243",
            "msg_0240e71360de434c9d3bca3460d5c243",
            "dlv_0240e71360de434c9d3bca3460d5c2430",
        ] {
            assert_eq!(DeliveryId::parse(bad), None, "{bad}");
        }
        let error = serde_json::from_value::<DeliveryId>(serde_json::json!("nope")).unwrap_err().to_string();
        assert_eq!(error, "\"nope\" is not a delivery id (dlv_ and 32 hex digits)");
    }
}
