//! The pure core: an incoming event and the webhooks in, the deliveries to make out.
//!
//! Deterministic by construction: the same source message, event and webhooks always give the same deliveries
//! with the same ids, so a redelivered message (Service Bus is at-least-once) yields the same `webhook-id`
//! headers and integrators can deduplicate.

use crate::events::{public_events, Event};
use crate::model::{CallbackType, Delivery, DeliveryId, Secret, Status, Unsent, Webhook, WebhookConfig, WebhookId};
use crate::policy::filter::FilterMemo;
use crate::template::Transform;
use crate::webhooks::routing::would_receive;
use crate::webhooks::{delivery_body, WebhookIndex};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Where an event came from: the message whose id its delivery ids derive from, and the caller's correlation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub id: String,
    pub correlation_id: Option<String>,
    /// The W3C trace context the deliveries continue (`Delivery::traceparent`).
    pub traceparent: Option<String>,
}

/// What routing an event makes: the deliveries to send, and those its webhooks' transforms kept from being
/// sent (filtered: the transform made nothing; dead: it failed, which it would again: it is deterministic).
/// When a mapping rule could not make its event (`failed`, why), nothing: the event is rejected whole.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Routed {
    pub deliveries: Vec<Delivery>,
    pub unsent: Vec<Unsent>,
    pub failed: Option<String>,
}

/// The deliveries `event` (from message `source`) makes to `webhooks`: for each public event it stands for, one
/// delivery to each webhook that receives it and whose filter its body passes, in webhook order; the body made
/// by the webhook's transform when it has one.
pub fn route(source: &Source, event: &Event, webhooks: &WebhookIndex) -> Routed {
    let ids = IdSeed::new(&source.id);
    let mut routed = Routed::default();
    let mut filtered = FilterMemo::default();
    for public in public_events(event, |attribute| webhooks.attribute_values(attribute)) {
        let public = match public {
            Ok(public) => public,
            Err(failed) => return Routed { failed: Some(failed), ..Routed::default() },
        };
        for (position, webhook) in webhooks.recipients(&public) {
            let body = delivery_body(&public, &webhook.config.attributes);
            if webhooks.passes_filter(position, &body, &mut filtered) {
                match made(&ids, source, webhook, &public, body) {
                    Made::Send(delivery) => routed.deliveries.push(delivery),
                    Made::Keep(unsent) => routed.unsent.push(unsent),
                }
            }
        }
    }
    routed
}

/// The deliveries of [`route`] alone.
pub fn dispatch(source: &Source, event: &Event, webhooks: &WebhookIndex) -> Vec<Delivery> {
    route(source, event, webhooks).deliveries
}

/// A delivery to send, or one a transform keeps.
enum Made {
    Send(Delivery),
    Keep(Unsent),
}

/// The delivery of `body` to `webhook`, through its transform; the delivery it would have been, unsent, when
/// the transform makes nothing or fails.
fn made(ids: &IdSeed, source: &Source, webhook: &Webhook, event: &Event, body: String) -> Made {
    // A hydrated event's ids come from what does not depend on the answers (`Event::identity`).
    let delivery = |body: String| ids.delivery_of(source, &webhook.id, event.name(), event.identity.as_deref(), body);
    let Some(transform) = &webhook.config.transform else {
        return Made::Send(delivery(body));
    };
    let attributes = &webhook.config.attributes;
    // A tenant's transform does not read what the operator's enrichers fetched: only what the rule put in the body.
    let without;
    let event = match (&webhook.config.tenant, &event.enrichment) {
        (Some(_), Some(_)) => {
            without = Event { enrichment: None, ..event.clone() };
            &without
        }
        _ => event,
    };
    let made = transform.apply_to_event(event, attributes, &source.id, source.correlation_id.as_deref());
    let kept = |body| delivery(body);
    match made {
        Ok(Some(new)) => Made::Send(delivery(new)),
        Ok(None) => Made::Keep(Unsent { delivery: kept(body), status: Status::Filtered, reason: None }),
        Err(error) => Made::Keep(Unsent::transform_failed(kept(body), error)),
    }
}

/// The deliveries `event` would make to the disabled webhooks of `webhooks` if they were enabled: logged as
/// skipped, for `POST /webhooks/{id}/recover` to send once the webhook is enabled again. Each with the id it
/// would have had; one its transform keeps from being sent is logged as that (filtered or dead).
pub fn skipped(source: &Source, event: &Event, webhooks: &WebhookIndex) -> Vec<Unsent> {
    let ids = IdSeed::new(&source.id);
    let mut unsent = Vec::new();
    for webhook in webhooks.disabled() {
        for public in own_public_events(event, webhook) {
            if !would_receive(webhook, &public) {
                continue;
            }
            let body = delivery_body(&public, &webhook.config.attributes);
            if webhook.config.filter.as_ref().is_none_or(|f| f.matches(&body)) {
                unsent.push(match made(&ids, source, webhook, &public, body) {
                    Made::Send(delivery) => Unsent::skipped(delivery),
                    Made::Keep(kept) => kept,
                });
            }
        }
    }
    unsent
}

/// What `transform` makes of `event` for a webhook with `attributes`: for each public event it stands for (the
/// webhook's attribute values standing for every webhook's, as for a disabled webhook), the delivery, or why
/// none is made, whether or not routing would bring that event to such a webhook: what the portal's "try it"
/// box shows of a sample before a transform is saved.
pub fn try_transform(event: &Event, transform: Transform, attributes: BTreeMap<String, String>) -> Vec<Unsent> {
    let ids = IdSeed::new("try");
    let source = Source { id: "try".to_owned(), correlation_id: None, traceparent: None };
    let config = WebhookConfig { attributes, transform: Some(transform), ..WebhookConfig::default() };
    let webhook = Webhook::new("try".into(), config, Secret::from_key(&[0; 32]), 0);
    own_public_events(event, &webhook)
        .into_iter()
        .map(|public| {
            match made(&ids, &source, &webhook, &public, delivery_body(&public, &webhook.config.attributes)) {
                Made::Send(delivery) => Unsent { delivery, status: Status::Pending, reason: None },
                Made::Keep(kept) => kept,
            }
        })
        .collect()
}

/// The public events `event` stands for with `webhook`'s own attribute values standing for every webhook's
/// (`ping:all` pings it by its name): for a webhook outside routing.
fn own_public_events(event: &Event, webhook: &Webhook) -> Vec<Event> {
    let values: Vec<(&str, [String; 1])> =
        webhook.config.attributes.iter().map(|(k, v)| (k.as_str(), [v.clone()])).collect();
    let attribute_values =
        |attribute: &str| values.iter().find(|(k, _)| *k == attribute).map_or(&[][..], |(_, v)| &v[..]);
    // A rule that fails here fails routing too, where the event is rejected with the reason.
    public_events(event, attribute_values).filter_map(Result::ok).map(Cow::into_owned).collect()
}

/// One delivery of `body` to one webhook outside routing (a ping), from message `source`.
pub fn direct(source: &Source, webhook_id: &WebhookId, event: &str, body: String) -> Delivery {
    IdSeed::new(&source.id).delivery(source, webhook_id, event, body)
}

/// The callback `kind` of `body` to a webhook's owner, made from `source`.
pub fn callback(source: &Source, webhook_id: &WebhookId, kind: CallbackType, body: String) -> Delivery {
    let delivery = IdSeed::new(&source.id).delivery(source, webhook_id, kind.as_str(), body);
    Delivery { callback: Some(kind), ..delivery }
}

/// The id of the delivery of `body` to a webhook, from message `source_id`.
pub fn delivery_id(source_id: &str, webhook_id: &WebhookId, body: &str) -> DeliveryId {
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

    /// The delivery of `body` (a public `event`) to a webhook, from message `source`.
    fn delivery(&self, source: &Source, webhook_id: &WebhookId, event: &str, body: String) -> Delivery {
        self.delivery_of(source, webhook_id, event, None, body)
    }

    /// [`IdSeed::delivery`], its id made from `identity` instead of the body when there is one.
    fn delivery_of(
        &self,
        source: &Source,
        webhook_id: &WebhookId,
        event: &str,
        identity: Option<&str>,
        body: String,
    ) -> Delivery {
        Delivery {
            id: self.delivery_id(webhook_id, identity.unwrap_or(&body)),
            webhook_id: webhook_id.clone(),
            event: event.to_owned(),
            callback: None,
            body,
            source_id: source.id.clone(),
            correlation_id: source.correlation_id.clone(),
            traceparent: source.traceparent.clone(),
        }
    }

    fn delivery_id(&self, webhook_id: &WebhookId, body: &str) -> DeliveryId {
        let mut hash = self.source.clone();
        for part in [webhook_id.as_str().as_bytes(), body.as_bytes()] {
            hash_part(&mut hash, part);
        }
        let digest = hash.finalize();
        DeliveryId::from_halves(self.source_half.iter().chain(&digest[..8]).copied())
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
        assert_eq!(&IdSeed::new("a").delivery_id(&"w".into(), "{}").as_str()[4..20], "af63dc4c8601ec8c");
    }
}
