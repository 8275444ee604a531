//! What the dispatcher counts, as OpenTelemetry instruments (read at `/metrics` and pushed with OTLP, see
//! `telemetry`). Label values are bounded: an event name of the catalog, an outcome, a webhook id; never a URL
//! or a payload value.

use dispatcher_core::events::{catalog, Event};
use dispatcher_core::inbound::received;
use opentelemetry::metrics::{Counter, Gauge, Histogram};
use opentelemetry::{KeyValue, Value};

/// A delivery's outcome, as `dispatcher_deliveries_total` counts it.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Delivered,
    Retried,
    Dead,
    Skipped,
    /// Kept from being sent by the webhook's transform, which made nothing of the event.
    Filtered,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retried => "retried",
            Outcome::Dead => "dead",
            Outcome::Skipped => "skipped",
            Outcome::Filtered => "filtered",
        }
    }
}

pub struct Metrics {
    accepted: Counter<u64>,
    rejected: Counter<u64>,
    deliveries: Counter<u64>,
    attempt_duration: Histogram<f64>,
    pending: Gauge<u64>,
    oldest_pending: Gauge<f64>,
    webhooks: Gauge<u64>,
    changes: Counter<u64>,
    refused: Counter<u64>,
    enrichments: Counter<u64>,
    inbound: Counter<u64>,
}

/// The name a rejected event's body gives itself, when it is one of the catalog's; `unknown` otherwise, so
/// that any body cannot make a label value of its own.
fn known_name(body: &[u8]) -> &'static str {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: Option<&'a str>,
    }
    let name = serde_json::from_slice::<Named>(body).ok().and_then(|n| n.name);
    name.and_then(catalog::event).map_or("unknown", |e| e.name.as_str())
}

impl Metrics {
    /// The instruments, from the process's meter provider (none before `telemetry::init`: nothing is kept).
    pub fn registered() -> Metrics {
        let meter = opentelemetry::global::meter("dispatcher");
        Metrics {
            accepted: meter
                .u64_counter("dispatcher.events.accepted")
                .with_description("Events accepted, by event name")
                .build(),
            rejected: meter
                .u64_counter("dispatcher.events.rejected")
                .with_description(
                    "Events refused as invalid, by the event name they gave (unknown when none of the catalog)",
                )
                .build(),
            deliveries: meter
                .u64_counter("dispatcher.deliveries")
                .with_description("Delivery outcomes, by outcome (delivered, retried, dead, skipped) and webhook")
                .build(),
            attempt_duration: meter
                .f64_histogram("dispatcher.attempt.duration")
                .with_unit("s")
                .with_description("How long each attempt took, from sending to the answer, by webhook")
                .with_boundaries(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
                .build(),
            pending: meter
                .u64_gauge("dispatcher.deliveries.pending")
                .with_description("Deliveries waiting for an attempt (local mode; on Azure, see the deliveries queue)")
                .build(),
            oldest_pending: meter
                .f64_gauge("dispatcher.deliveries.oldest_pending_age")
                .with_unit("s")
                .with_description("Age of the oldest delivery waiting for an attempt (local mode)")
                .build(),
            webhooks: meter
                .u64_gauge("dispatcher.webhooks")
                .with_description("Webhooks, by state (enabled, disabled)")
                .build(),
            changes: meter
                .u64_counter("dispatcher.changes")
                .with_description("Changes made through the API (the audit log), by who (operator, tenant) and action")
                .build(),
            enrichments: meter
                .u64_counter("dispatcher.enrichments")
                .with_description("Enrichers' fetches, by enricher and outcome (fetched, cached, failed)")
                .build(),
            inbound: meter
                .u64_counter("dispatcher.inbound")
                .with_description(
                    "Providers' requests to the sources, by source and outcome (published, repeat, unknown-source, not-json, or why it was refused: bad-signature, stale, missing-header, ...)",
                )
                .build(),
            refused: meter
                .u64_counter("dispatcher.credentials.refused")
                .with_description(
                    "API calls refused for their credential, by reason (malformed, unknown, expired, disabled)",
                )
                .build(),
        }
    }

    /// An event routed: a catalog event under its name, a received one under its source's (`stripe:*`), as a
    /// provider's types are its own to add.
    pub fn accepted(&self, event: &Event) {
        let label = match event.spec() {
            Some(spec) => Value::from(spec.name.as_str()),
            None => Value::from(received::every_of(event.name()).unwrap_or_default()),
        };
        self.accepted.add(1, &[KeyValue::new("event", label)]);
    }

    /// A provider's request to a source: `published`, a `repeat`, `unknown-source`, `not-json`, or why it was
    /// refused (`bad-signature`, `stale`, ...: `Refused::code`).
    pub fn inbound(&self, source: &str, outcome: &'static str) {
        let labels = [KeyValue::new("source", source.to_owned()), KeyValue::new("outcome", outcome)];
        self.inbound.add(1, &labels);
    }

    /// An enricher of the catalog fetched (`fetched`), found its answer in the cache (`cached`) or failed.
    pub fn enrichment(&self, enricher: &str, outcome: &'static str) {
        let labels = [KeyValue::new("enricher", enricher.to_owned()), KeyValue::new("outcome", outcome)];
        self.enrichments.add(1, &labels);
    }

    pub fn rejected(&self, body: &[u8]) {
        self.rejected.add(1, &[KeyValue::new("event", known_name(body))]);
    }

    pub fn delivery(&self, outcome: Outcome, webhook_id: &str) {
        let labels = [KeyValue::new("outcome", outcome.label()), KeyValue::new("webhook", webhook_id.to_owned())];
        self.deliveries.add(1, &labels);
    }

    pub fn attempt(&self, webhook_id: &str, duration_ms: u64) {
        self.attempt_duration.record(duration_ms as f64 / 1000.0, &[KeyValue::new("webhook", webhook_id.to_owned())]);
    }

    /// The backlog, when the queue can tell it: how many deliveries wait, and for how long the oldest has.
    pub fn backlog(&self, pending: u64, oldest_age_ms: Option<i64>) {
        self.pending.record(pending, &[]);
        self.oldest_pending.record(oldest_age_ms.unwrap_or(0).max(0) as f64 / 1000.0, &[]);
    }

    /// A change the audit log records: `by` is `operator` or `tenant`, `action` one of a fixed set.
    pub fn change(&self, by: &'static str, action: &'static str) {
        self.changes.add(1, &[KeyValue::new("by", by), KeyValue::new("action", action)]);
    }

    pub fn refused(&self, reason: &'static str) {
        self.refused.add(1, &[KeyValue::new("reason", reason)]);
    }

    pub fn webhooks(&self, enabled: u64, disabled: u64) {
        self.webhooks.record(enabled, &[KeyValue::new("state", "enabled")]);
        self.webhooks.record(disabled, &[KeyValue::new("state", "disabled")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_event_names_itself_only_from_the_catalog() {
        assert_eq!(known_name(br#"{"name": "ping", "payload": 3}"#), "ping");
        assert_eq!(known_name(br#"{"name": "profile:completed"}"#), "profile:completed");
        assert_eq!(known_name(br#"{"name": "https://attacker.example/anything"}"#), "unknown");
        assert_eq!(known_name(b"not json"), "unknown");
    }
}
