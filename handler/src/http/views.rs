//! What the API answers: the JSON shapes of its responses (times as RFC 3339, credentials left out), whose
//! schemas go into the OpenAPI document. Each is made from a model type by one function here.

use crate::service::{timestamp, Health, Preview};
use dispatcher_core::model::{
    Attempt, Delivery, DeliveryId, LogEntry, Problem, Rejected, Status, TargetAuth, Unsent, Webhook,
};
use dispatcher_core::policy::filter::EventFilter;
use dispatcher_core::policy::retry::RetrySchedule;
use dispatcher_core::template::Transform;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::num::NonZeroU32;

/// An accepted event: its id (the source of every delivery id) and how many deliveries it made.
#[derive(Serialize, JsonSchema)]
pub struct AcceptedView {
    pub id: String,
    /// Absent on Azure, where the event is queued and routed by OnIncomingEvent, and when its enrichers failed
    /// and it waits for its next try.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<usize>,
}

/// What an event would make, nothing kept: the routing of the engine, for a filter tester.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    /// The event's name.
    pub event: String,
    /// The deliveries it would make: to which webhook, which public event, the exact body.
    pub deliveries: Vec<PreviewDelivery>,
    /// What webhooks' transforms keep from being sent: `filtered` (the transform made nothing) or `dead` (it
    /// failed: `reason`), each with the body it would have had.
    pub unsent: Vec<UnsentDelivery>,
    /// What it would deliver to disabled webhooks, were they enabled (logged as skipped when it is published).
    pub skipped: Vec<PreviewDelivery>,
    /// Why nothing would be delivered: its enrichers failed (it would be tried again, then rejected), or a
    /// mapping rule's payload expression failed (it would be rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// What a transform made of one public event: `sent` with the body, `filtered`, or `dead` with the error.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriedView {
    pub event: String,
    /// `sent`, `filtered` or `dead`.
    pub outcome: &'static str,
    /// The body the webhook would get (`sent`), or the one it would have had.
    #[schemars(with = "serde_json::Value")]
    pub body: Box<serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Unsent> for TriedView {
    fn from(tried: Unsent) -> TriedView {
        let outcome = match tried.status {
            Status::Filtered => "filtered",
            Status::Dead => "dead",
            _ => "sent",
        };
        TriedView { event: tried.delivery.event, outcome, body: raw_body(&tried.delivery.body), reason: tried.reason }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsentDelivery {
    #[serde(flatten)]
    pub delivery: PreviewDelivery,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewDelivery {
    pub webhook_id: String,
    /// The public event.
    pub event: String,
    /// The exact body the webhook would receive.
    #[schemars(with = "serde_json::Value")]
    pub body: Box<serde_json::value::RawValue>,
}

impl From<Preview> for PreviewView {
    fn from(preview: Preview) -> PreviewView {
        let one = |d: Delivery| PreviewDelivery {
            webhook_id: d.webhook_id.to_string(),
            event: d.event,
            body: raw_body(&d.body),
        };
        let view = |deliveries: Vec<Delivery>| deliveries.into_iter().map(one).collect();
        let unsent = preview
            .unsent
            .into_iter()
            .map(|u| UnsentDelivery { delivery: one(u.delivery), status: u.status, reason: u.reason })
            .collect();
        PreviewView {
            failed: preview.failed,
            event: preview.event,
            deliveries: view(preview.deliveries),
            unsent,
            skipped: view(preview.skipped),
        }
    }
}

/// A delivery's body as the JSON it is. It is always JSON text (it is made so); an unreadable one shows as a
/// string rather than failing the answer.
fn raw_body(body: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(body.to_owned())
        .or_else(|_| serde_json::value::to_raw_value(body))
        .unwrap_or_default()
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "PageOf{T}")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn of<M>((items, next_cursor): (Vec<M>, Option<String>), view: impl Fn(M) -> T) -> Page<T> {
        Page { items: items.into_iter().map(view).collect(), next_cursor }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedView {
    pub id: String,
    pub received_at: String,
    pub problems: Vec<Problem>,
    /// The start of what was received.
    pub body: String,
}

impl From<Rejected> for RejectedView {
    fn from(r: Rejected) -> Self {
        RejectedView { id: r.id, received_at: timestamp(r.received_at_ms), problems: r.problems, body: r.body }
    }
}

/// A webhook as the API shows it: its configuration with credentials left out, and its signing secret only
/// in the answer to its creation.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub subscriptions: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// When the dispatcher disabled it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<EventFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<RetrySchedule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_auth: Option<AuthView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_when: Option<EventFilter>,
    /// The tenant that owns it; absent for the operator's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to `POST /webhooks`; afterwards at `GET /webhooks/{id}/secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Target authentication without its secrets (password, token, clientSecret, privateKey).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// An mtls client certificate (public; its key is never shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
}

impl AuthView {
    fn of(auth: &TargetAuth) -> AuthView {
        let view = AuthView {
            kind: auth.kind(),
            username: None,
            token_url: None,
            issuer: None,
            client_id: None,
            scope: None,
            audience: None,
            certificate: None,
        };
        match auth {
            TargetAuth::Basic { username, .. } => AuthView { username: Some(username.clone()), ..view },
            TargetAuth::Bearer { .. } => view,
            TargetAuth::OAuth2(client) => AuthView {
                token_url: client.token_url.clone(),
                issuer: client.issuer.clone(),
                client_id: Some(client.client_id.clone()),
                scope: client.scope.clone(),
                audience: client.audience.clone(),
                ..view
            },
            TargetAuth::Mtls(mtls) => AuthView { certificate: Some(mtls.certificate.clone()), ..view },
        }
    }
}

impl WebhookView {
    pub fn of(w: &Webhook, with_secret: bool) -> WebhookView {
        let c = &w.config;
        WebhookView {
            id: w.id.to_string(),
            url: c.url.clone(),
            subscriptions: c.subscriptions.clone(),
            attributes: c.attributes.clone(),
            headers: c.headers.clone(),
            disabled: c.disabled,
            disabled_reason: w.disabled_reason.clone(),
            disabled_at: w.disabled_at_ms.map(timestamp),
            description: c.description.clone(),
            failure_callback_url: c.failure_callback_url.clone(),
            auth: c.auth.as_ref().map(AuthView::of),
            filter: c.filter.clone(),
            retry_schedule: c.retry_schedule.clone(),
            rate_limit: c.rate_limit,
            callback_url: c.callback_url.clone(),
            callback_auth: c.callback_auth.as_ref().map(AuthView::of),
            fail_when: c.fail_when.clone(),
            transform: c.transform.clone(),
            tenant: c.tenant.as_ref().map(ToString::to_string),
            created_at: timestamp(w.created_at_ms),
            updated_at: timestamp(w.updated_at_ms),
            secret: with_secret.then(|| w.secret.expose().to_owned()),
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// `whsec_` + base64: the key that signs deliveries (Standard Webhooks).
    pub secret: String,
    /// During a rotation, the previous secret, which keeps signing until `previousSecretExpiresAt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<String>,
}

impl SecretView {
    pub fn of(w: &Webhook, now_ms: i64) -> SecretView {
        let previous = w.previous_secret(now_ms);
        SecretView {
            secret: w.secret.expose().to_owned(),
            previous_secret: previous.map(|p| p.secret.expose().to_owned()),
            previous_secret_expires_at: previous.map(|p| timestamp(p.expires_at_ms)),
        }
    }
}

/// `POST /webhooks/{id}/recover`: the window of the deliveries to send again.
#[derive(JsonSchema)]
#[allow(dead_code)] // Only its schema is used: the body is read as JSON and checked field by field.
pub struct RecoverRequest {
    /// RFC 3339: deliveries created from then on.
    #[schemars(extend("format" = "date-time"), length(min = 1))]
    since: String,
    /// RFC 3339: until then (now when absent).
    #[schemars(extend("format" = "date-time"), length(min = 1))]
    until: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct RecoveredView {
    /// How many dead or skipped deliveries were sent again.
    pub deliveries: usize,
}

/// A webhook's health: its deliveries of the last 24 hours, and its latest failure.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    /// The start of the window (RFC 3339): deliveries created since then are counted.
    pub since: String,
    /// How many deliveries were created in the window.
    pub deliveries: u64,
    /// How many of them are in each status.
    pub pending: u64,
    pub retrying: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub skipped: u64,
    /// Kept from being sent by the webhook's transform.
    pub filtered: u64,
    /// Succeeded among those that ended (succeeded or dead), from 0 to 1; absent before any ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// The latest delivery now retrying or dead, of any age.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureView>,
    /// Why it receives nothing though it is enabled: an attribute value its tenant's grants no longer list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    pub delivery_id: DeliveryId,
    pub event: String,
    /// When its last attempt was made (or it was given up without one).
    pub at: String,
    pub status: Status,
    /// Why: the dead reason, else the last attempt's outcome (`HTTP 503`, an error).
    pub reason: String,
}

impl From<Health> for HealthView {
    fn from(health: Health) -> HealthView {
        let c = health.counts;
        let last_failure = health.last_failure.map(|entry| {
            let last = entry.attempts.last();
            FailureView {
                at: timestamp(last.map_or(entry.created_at_ms, |a| a.at_ms)),
                reason: entry.dead_reason.clone().or_else(|| last.map(Attempt::outcome)).unwrap_or_default(),
                delivery_id: entry.delivery.id,
                event: entry.delivery.event,
                status: entry.status,
            }
        });
        HealthView {
            since: timestamp(health.since_ms),
            deliveries: c.total(),
            pending: c.pending,
            retrying: c.retrying,
            succeeded: c.succeeded,
            dead: c.dead,
            skipped: c.skipped,
            filtered: c.filtered,
            success_rate: c.success_rate(),
            last_failure,
            blocked: health.blocked,
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct DeliveryQueuedView {
    pub id: DeliveryId,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub webhook_id: String,
    pub event: String,
    pub status: Status,
    /// The exact body sent.
    #[schemars(with = "serde_json::Value")]
    pub payload: Box<serde_json::value::RawValue>,
    pub source_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_reason: Option<String>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub at: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub response: String,
    /// The headers the dispatcher set, in the order sent, `webhook-signature` among them; the webhook's own
    /// `headers` and its credentials followed them.
    pub headers: Vec<HeaderView>,
}

#[derive(Serialize, JsonSchema)]
pub struct HeaderView {
    pub name: String,
    pub value: String,
}

impl AttemptView {
    /// The attempt of `delivery`, with the headers `request::delivery` set for it, rebuilt from what the log
    /// keeps (an attempt logged before signatures were kept shows none of the signed ones).
    fn of(a: Attempt, delivery: &Delivery) -> AttemptView {
        let header = |name: &str, value: String| HeaderView { name: name.to_owned(), value };
        let mut headers =
            vec![header("content-type", "application/json".into()), header("webhook-id", delivery.id.to_string())];
        if let (Some(signed_at), Some(signature)) = (a.signed_at, a.signature) {
            headers.push(header("webhook-timestamp", signed_at.to_string()));
            headers.push(header("webhook-signature", signature));
        }
        if let Some(correlation_id) = &delivery.correlation_id {
            headers.push(header("x-correlation-id", correlation_id.clone()));
        }
        AttemptView {
            at: timestamp(a.at_ms),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response: a.response,
            headers,
        }
    }
}

impl From<LogEntry> for DeliveryView {
    fn from(e: LogEntry) -> Self {
        let d = e.delivery;
        let payload = raw_body(&d.body);
        let attempts = e.attempts.into_iter().map(|a| AttemptView::of(a, &d)).collect();
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook_id.to_string(),
            event: d.event,
            status: e.status,
            payload,
            source_id: d.source_id,
            correlation_id: d.correlation_id,
            created_at: timestamp(e.created_at_ms),
            next_attempt_at: e.next_attempt_at_ms.map(timestamp),
            dead_reason: e.dead_reason,
            attempts,
        }
    }
}
