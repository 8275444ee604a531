//! What the API answers: the JSON shapes of its responses, whose schemas go into the OpenAPI document.

use crate::dispatch::DeliveryId;
use crate::local::Counters;
use crate::store::{DeliveryRecord, Rejected, Status, StoredWebhook};
use crate::validation::Problem;
use crate::webhooks::config::TargetAuth;
use crate::webhooks::WebhookConfig;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds since the Unix epoch as RFC 3339, e.g. `2026-11-22T10:30:00.123Z`.
pub fn timestamp(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

#[derive(Serialize, JsonSchema)]
pub struct InfoView {
    pub name: &'static str,
    pub version: &'static str,
    /// `local` (one process, SQLite) or `azure` (Functions custom handler).
    pub mode: &'static str,
    /// Webhooks known to this process (on Azure: in its cache, 0 before the first read).
    pub webhooks: usize,
    /// What this process did since it started (local mode; on Azure, instances come and go: see the logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersView>,
}

#[derive(Serialize, JsonSchema)]
pub struct CountersView {
    pub accepted: u64,
    pub rejected: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

impl InfoView {
    pub fn new(mode: &'static str, webhooks: usize, counters: Option<&Counters>) -> InfoView {
        InfoView {
            name: "public-event-dispatcher",
            version: env!("CARGO_PKG_VERSION"),
            mode,
            webhooks,
            counters: counters.map(|c| CountersView {
                accepted: c.accepted.load(Ordering::Relaxed),
                rejected: c.rejected.load(Ordering::Relaxed),
                delivered: c.delivered.load(Ordering::Relaxed),
                retried: c.retried.load(Ordering::Relaxed),
                dead: c.dead.load(Ordering::Relaxed),
            }),
        }
    }
}

/// An accepted event: its id (the source of every delivery id) and how many deliveries it made.
#[derive(Serialize, JsonSchema)]
pub struct AcceptedView {
    pub id: String,
    /// Absent on Azure, where the event is queued and routed by OnIncomingEvent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<usize>,
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

/// A registration body: the webhook configuration, and optionally the id to give it.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub struct Registration {
    /// 1 to 64 letters, digits, `_` or `-`; generated when absent.
    id: Option<String>,
    #[serde(flatten)]
    config: WebhookConfig,
}

/// The JSON Schema of the incoming event, from the catalog.
pub struct IncomingEventSchema;

impl JsonSchema for IncomingEventSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IncomingEvent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::try_from(crate::schemas::incoming_event_schema_with(false)).unwrap_or_default()
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthView>,
    pub created_at: String,
    pub updated_at: String,
    /// Only in the answer to `POST /webhooks`; afterwards at `GET /webhooks/{id}/secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Target authentication without its credentials.
#[derive(Serialize, JsonSchema)]
pub struct AuthView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl WebhookView {
    pub fn of(w: &StoredWebhook, with_secret: bool) -> WebhookView {
        let c = &w.config;
        WebhookView {
            id: w.id.to_string(),
            url: c.url.clone(),
            subscriptions: c.subscriptions.clone(),
            attributes: c.attributes.clone(),
            headers: c.headers.clone(),
            disabled: c.disabled,
            disabled_reason: w.disabled_reason.clone(),
            description: c.description.clone(),
            failure_callback_url: c.failure_callback_url.clone(),
            auth: c.auth.as_ref().map(|a| match a {
                TargetAuth::Basic { username, .. } => AuthView { kind: "basic", username: Some(username.clone()) },
                TargetAuth::Bearer { .. } => AuthView { kind: "bearer", username: None },
            }),
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
    pub fn of(w: &StoredWebhook) -> SecretView {
        let previous = w.previous_secret.as_ref().filter(|p| p.expires_at_ms > crate::delivery::sender::now_ms());
        SecretView {
            secret: w.secret.expose().to_owned(),
            previous_secret: previous.map(|p| p.secret.expose().to_owned()),
            previous_secret_expires_at: previous.map(|p| timestamp(p.expires_at_ms)),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct DeliveryQueuedView {
    #[schemars(with = "String")]
    pub id: DeliveryId,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    #[schemars(with = "String")]
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
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(r: DeliveryRecord) -> Self {
        DeliveryView {
            id: r.id,
            webhook_id: r.webhook_id,
            event: r.event,
            status: r.status,
            payload: r.payload,
            source_id: r.source_id,
            correlation_id: r.correlation_id,
            created_at: timestamp(r.created_at_ms),
            next_attempt_at: r.next_attempt_at_ms.map(timestamp),
            dead_reason: r.dead_reason,
            attempts: r
                .attempts
                .into_iter()
                .map(|a| AttemptView {
                    at: timestamp(a.at_ms),
                    duration_ms: a.duration_ms,
                    status_code: a.status_code,
                    error: a.error,
                    response: a.response,
                })
                .collect(),
        }
    }
}
