//! Taking events in: a published event is validated and either routed at once or queued to be routed
//! (`Intake`); routing turns it into deliveries (the core's `dispatch`) and submits them to a delivery queue.
//! An invalid event is recorded with every problem and refused, once: retrying it cannot make it valid.

use super::access::require_operator;
use super::hydration::Unhydrated;
use super::metrics::Outcome;
use super::{off_workers, Counters, Intake, Invalid, Service, ServiceError};
use crate::ports::NewDeliveries;
use crate::telemetry;
use dispatcher_core::dispatch::{route, skipped, try_transform, Routed, Source};
use dispatcher_core::events::{catalog, decode, decode_value, Event};
use dispatcher_core::model::{join, wrong_type, Report};
use dispatcher_core::model::{Access, Delivery, Problem, Rejected, Status, Unsent};
use dispatcher_core::template::Transform;
use dispatcher_core::webhooks::WebhookIndex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

/// A published event: its id (the source of every delivery id), and how many deliveries it made when it was
/// routed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: String,
    pub deliveries: Option<usize>,
}

/// What an event would make, without making it: the deliveries routing gives it (webhook, public event, exact
/// body, after the webhook's transform), those the transforms keep from being sent (filtered, or dead with the
/// transform's error), and those it would make to disabled webhooks were they enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub event: String,
    pub deliveries: Vec<Delivery>,
    pub unsent: Vec<Unsent>,
    pub skipped: Vec<Delivery>,
    /// Why nothing would be delivered: the enrichers failed, or a mapping rule's expression did.
    pub failed: Option<String>,
}

/// Who publishes, which decides what it waits for in local mode (on Azure every event is queued, and
/// OnIncomingEvent does the rest). The operator is answered once the event is routed, and hears every refusal.
/// A provider (a source's verified request) is answered once the event is durably held: the enrichers of an event
/// that has some fetch afterwards, in the waiting events' loop (a provider gives up after a few seconds), and a
/// rule's failure is the operator's to read among the rejected events, never told to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publisher {
    Operator,
    Provider,
}

/// What became of a message taken from a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    Routed {
        event: String,
        deliveries: usize,
    },
    Rejected(Rejected),
    /// Its enrichers failed (the reason): it waits for its next try, at this time.
    Waiting {
        reason: String,
        at_ms: i64,
    },
}

impl Service {
    /// Publishes an event's exact body under `idempotency_key` (a new id without one): routed at once, or sent
    /// to the events queue. An invalid event is recorded and refused with every problem. The span of the
    /// publish continues the caller's trace (`traceparent`), and its deliveries continue it.
    pub async fn publish(
        &self,
        access: &Access,
        body: &[u8],
        idempotency_key: Option<String>,
        correlation_id: Option<String>,
        traceparent: Option<String>,
    ) -> Result<Published, ServiceError> {
        require_operator(access, "publishing events")?;
        self.publish_traced(body, idempotency_key, correlation_id, traceparent, Publisher::Operator).await
    }

    /// [`Service::publish`] for whoever may: the operator, or a source's verified provider (see [`Publisher`]).
    pub(super) async fn publish_traced(
        &self,
        body: &[u8],
        idempotency_key: Option<String>,
        correlation_id: Option<String>,
        traceparent: Option<String>,
        publisher: Publisher,
    ) -> Result<Published, ServiceError> {
        let span = tracing::info_span!("publish");
        telemetry::continue_trace(&span, traceparent.as_deref());
        let traceparent = telemetry::traceparent(&span);
        self.publish_in_span(body, idempotency_key, correlation_id, traceparent, publisher).instrument(span).await
    }

    async fn publish_in_span(
        &self,
        body: &[u8],
        idempotency_key: Option<String>,
        correlation_id: Option<String>,
        traceparent: Option<String>,
        publisher: Publisher,
    ) -> Result<Published, ServiceError> {
        let event = match decode(body) {
            Ok(event) => event,
            Err(report) => {
                self.reject(None, report.problems().to_vec(), body).await?;
                return Err(ServiceError::Invalid { what: Invalid::Event, report });
            }
        };
        // An idempotency key makes a re-sent event yield the same delivery ids, which are delivered once.
        let id = idempotency_key.map_or_else(|| self.random_id("evt_"), Ok)?;
        let source = Source { id, correlation_id, traceparent };
        let provider = publisher == Publisher::Provider;
        let later = provider && !catalog::current().enrichers_for(&event).is_empty();
        let deliveries = match &self.intake {
            // Durably waiting for the local loop's first try, which fetches.
            Intake::Route if later => {
                self.event_retries.send_event_later(body, &source, 1, self.clock.now_ms()).await?;
                None
            }
            Intake::Route => match self.hydrate(event, &source).await {
                Ok(event) => match self.route(&event, &source, &*self.queue).await? {
                    Ok(deliveries) => Some(deliveries),
                    // Recorded as rejected: held for the operator, whose rule it is.
                    Err(_) if provider => None,
                    Err(rejected) => return Err(refused(rejected)),
                },
                Err(failed) => match self.wait(body, &source, 1, failed).await? {
                    Accepted::Rejected(rejected) => return Err(refused(rejected)),
                    _ => None,
                },
            },
            Intake::Queue(events) => {
                events.send_event(body, &source).await?;
                None
            }
        };
        Ok(Published { id: source.id, deliveries })
    }

    /// Routes an event's body as publishing would, against the webhooks of now, and keeps nothing: what a
    /// filter tester shows (a tenant sees its own webhooks' only). Its enrichers fetch for the operator (their
    /// answers cached as for publishing), never for a tenant. An invalid event is refused with every problem,
    /// and not recorded.
    pub async fn preview(&self, access: &Access, body: &[u8]) -> Result<Preview, ServiceError> {
        let event = decode(body).map_err(|report| ServiceError::Invalid { what: Invalid::Event, report })?;
        let webhooks = self.webhooks.get().await?;
        let source = Source { id: "preview".to_owned(), correlation_id: None, traceparent: None };
        let name = event.name().to_owned();
        // What the operator's APIs answer is not a tenant's to see, nor to make them answer.
        let tenant_needs_enrichers =
            !matches!(access, Access::Operator) && !catalog::current().enrichers_for(&event).is_empty();
        let hydrated = match tenant_needs_enrichers {
            true => Err(Unhydrated {
                reason: "this event's enrichers run for the operator's previews only".to_owned(),
                permanent: true,
            }),
            false => self.hydrate(event, &source).await,
        };
        let event = match hydrated {
            Ok(event) => event,
            Err(failed) => {
                return Ok(Preview {
                    event: name,
                    deliveries: vec![],
                    unsent: vec![],
                    skipped: vec![],
                    failed: Some(failed.reason),
                })
            }
        };
        let routed = routed(&event, &source, webhooks.clone()).await?;
        let sees = |d: &Delivery| webhooks.get(&d.webhook_id).is_some_and(|w| access.sees(w));
        let (skipped, unsent): (Vec<Unsent>, Vec<Unsent>) =
            routed.unsent.into_iter().partition(|u| u.status == Status::Skipped);
        Ok(Preview {
            event: event.name().to_owned(),
            deliveries: routed.deliveries.into_iter().filter(|d| sees(d)).collect(),
            unsent: unsent.into_iter().filter(|u| sees(&u.delivery)).collect(),
            skipped: skipped.into_iter().map(|u| u.delivery).filter(|d| sees(d)).collect(),
            failed: routed.failed,
        })
    }

    /// What a transform not saved yet makes of an event (`{"transform", "event", "attributes"}`), for a webhook
    /// with those attributes: each delivery it would make, or why none. Changes and keeps nothing.
    pub async fn try_transform(&self, body: &Value) -> Result<Vec<Unsent>, ServiceError> {
        let invalid = |report| ServiceError::Invalid { what: Invalid::TransformTrial, report };
        let mut problems = Vec::new();
        let transform = match body.get("transform") {
            Some(Value::String(source)) => {
                Transform::compile(source).map_err(|e| problems.push(Problem::new("transform", e.to_string()))).ok()
            }
            other => {
                problems.push(Problem::new(
                    "transform",
                    wrong_type(other.unwrap_or(&Value::Null), "a template (a string)"),
                ));
                None
            }
        };
        let event = match body.get("event") {
            Some(event) => decode_value(event.clone())
                .map_err(|report| problems.extend(report.problems().iter().map(|p| p.under("event"))))
                .ok(),
            None => {
                problems
                    .push(Problem::new("event", "is missing, expected an event {\"name\": ..., \"payload\": {...}}"));
                None
            }
        };
        let mut attributes = BTreeMap::new();
        match body.get("attributes") {
            None | Some(Value::Null) => {}
            Some(Value::Object(given)) => {
                for (key, value) in given {
                    match value.as_str() {
                        Some(text) => drop(attributes.insert(key.clone(), text.to_owned())),
                        None => problems.push(Problem::new(join("attributes", key), wrong_type(value, "a string"))),
                    }
                }
            }
            Some(other) => problems.push(Problem::new("attributes", wrong_type(other, "an object of strings"))),
        }
        Report::check(problems).map_err(invalid)?;
        match (event, transform) {
            // Off the async workers: a run may take up to its deadline.
            (Some(event), Some(transform)) => off_workers(move || try_transform(&event, transform, attributes)).await,
            _ => Err(invalid(Report::single("body", "is invalid"))),
        }
    }

    /// Takes a message of the events queue (OnIncomingEvent), or an event whose try `attempt` (1: its first) has
    /// come: routes a valid event, submitting its deliveries to `queue`, once its enrichers fetched what its rules
    /// need; records an invalid one as rejected. `Err` only for what a redelivery may cure.
    pub async fn accept(
        &self,
        body: &[u8],
        source: &Source,
        attempt: u32,
        queue: &dyn NewDeliveries,
    ) -> Result<Accepted, ServiceError> {
        match decode(body) {
            Ok(event) => {
                let event = match self.hydrate(event, source).await {
                    Ok(event) => event,
                    Err(failed) => return self.wait(body, source, attempt, failed).await,
                };
                match self.route(&event, source, queue).await? {
                    Ok(deliveries) => Ok(Accepted::Routed { event: event.name().to_owned(), deliveries }),
                    Err(rejected) => Ok(Accepted::Rejected(rejected)),
                }
            }
            Err(report) => {
                let rejected = self.reject(Some(source.id.clone()), report.problems().to_vec(), body).await?;
                Ok(Accepted::Rejected(rejected))
            }
        }
    }

    /// An event whose enrichers failed on its `attempt`-th try: sent again for the next one on the retry
    /// schedule, or, past the last or when trying again cannot help, rejected with the reason. Never routed
    /// without its data.
    async fn wait(
        &self,
        body: &[u8],
        source: &Source,
        attempt: u32,
        failed: Unhydrated,
    ) -> Result<Accepted, ServiceError> {
        let Unhydrated { reason, permanent } = failed;
        let next = if permanent { None } else { self.schedule.delay_after(attempt, &source.id, None) };
        match next {
            Some(delay) => {
                let at_ms = self.clock.now_ms() + delay.as_millis() as i64;
                tracing::warn!(event_id = %source.id, attempt, %reason, "enrichment failed; the event is tried again later");
                self.event_retries.send_event_later(body, source, attempt + 1, at_ms).await?;
                Ok(Accepted::Waiting { reason, at_ms })
            }
            None => {
                let tried = match permanent {
                    true => "not tried again: it would fail the same way".to_owned(),
                    false => format!("tried {attempt} times"),
                };
                let problem = Problem::new("enrichment", format!("{reason} ({tried})"));
                Ok(Accepted::Rejected(self.reject(Some(source.id.clone()), vec![problem], body).await?))
            }
        }
    }

    /// Routes a valid event to the webhooks and submits its deliveries to `queue`; returns how many. What it
    /// would have delivered to disabled webhooks is logged as skipped. An event a mapping rule cannot make its
    /// event of (an expression of its payload failed) is rejected with the reason, nothing sent. Its span
    /// continues the source's trace, and the deliveries carry the span's, so that their attempts continue it.
    pub async fn route(
        &self,
        event: &Event,
        source: &Source,
        queue: &dyn NewDeliveries,
    ) -> Result<Result<usize, Rejected>, ServiceError> {
        let span = tracing::info_span!("route", event = event.name());
        telemetry::continue_trace(&span, source.traceparent.as_deref());
        let source = Source { traceparent: telemetry::traceparent(&span), ..source.clone() };
        self.route_in_span(event, &source, queue).instrument(span).await
    }

    async fn route_in_span(
        &self,
        event: &Event,
        source: &Source,
        queue: &dyn NewDeliveries,
    ) -> Result<Result<usize, Rejected>, ServiceError> {
        let webhooks = self.webhooks.get().await?;
        let Routed { deliveries, unsent, failed } = routed(event, source, webhooks).await?;
        if let Some(reason) = failed {
            let body = serde_json::to_vec(event).unwrap_or_default();
            return Ok(Err(self
                .reject(Some(source.id.clone()), vec![Problem::new("mappings", reason)], &body)
                .await?));
        }
        let count = deliveries.len();
        if !unsent.is_empty() {
            self.log.log_unsent(&unsent, self.clock.now_ms()).await?;
        }
        self.submit(deliveries, queue).await?;
        Counters::add(&self.counters.accepted);
        self.metrics.accepted(event);
        for unsent in &unsent {
            let outcome = match unsent.status {
                Status::Filtered => Outcome::Filtered,
                Status::Dead => Outcome::Dead,
                _ => Outcome::Skipped,
            };
            self.count(outcome, unsent.delivery.webhook_id.as_str());
        }
        Ok(Ok(count))
    }

    /// Records a refused input (an event, or a queue message that is not one) under `id` (a new one without),
    /// with every problem and the start of its body.
    pub async fn reject(
        &self,
        id: Option<String>,
        problems: Vec<Problem>,
        body: &[u8],
    ) -> Result<Rejected, ServiceError> {
        let id = id.map_or_else(|| self.random_id("evt_"), Ok)?;
        let rejected = Rejected::new(id, self.clock.now_ms(), problems, body);
        tracing::warn!(event_id = %rejected.id, reason = %rejected.reason(), "event rejected");
        self.rejected.reject(&rejected).await?;
        Counters::add(&self.counters.rejected);
        self.metrics.rejected(body);
        Ok(rejected)
    }

    /// Rejected events, newest first.
    pub async fn rejected_events(
        &self,
        access: &Access,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<crate::ports::Page<Rejected>, ServiceError> {
        require_operator(access, "reading rejected events")?;
        Ok(self.rejected.list_rejected(limit, cursor).await?)
    }

    /// Records a queue message that cannot be read at all (`what` says why), as rejected.
    pub async fn reject_message(
        &self,
        id: Option<String>,
        path: &str,
        what: String,
        body: &[u8],
    ) -> Result<Rejected, ServiceError> {
        self.reject(id, vec![Problem::new(path, what)], body).await
    }
}

/// What routing `event` makes (`route`, and the skipped deliveries of disabled webhooks with them). When a
/// webhook has a transform or a rule an expression, off the async workers: a run may take up to its deadline
/// (`template::DEADLINE`), and a fan-out runs one a webhook.
async fn routed(event: &Event, source: &Source, webhooks: Arc<WebhookIndex>) -> Result<Routed, ServiceError> {
    let all = |event: &Event, source: &Source, webhooks: &WebhookIndex| {
        let mut routed = route(source, event, webhooks);
        routed.unsent.extend(skipped(source, event, webhooks));
        routed
    };
    if !webhooks.runs_transforms() && !catalog::current().runs_templates() {
        return Ok(all(event, source, &webhooks));
    }
    let (event, source) = (event.clone(), source.clone());
    off_workers(move || all(&event, &source, &webhooks)).await
}

/// An event refused after it was accepted as valid (its enrichers cannot fetch, a rule's expression failed):
/// recorded as rejected; the local publisher hears why at once.
fn refused(rejected: Rejected) -> ServiceError {
    let report = Report::of(rejected.problems).unwrap_or_else(|| Report::single("event", "rejected"));
    ServiceError::Invalid { what: Invalid::Event, report }
}
