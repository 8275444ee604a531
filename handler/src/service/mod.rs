//! The application, written once for both runtimes: it accepts events, routes them and submits their deliveries
//! to a queue (`intake`), attempts a delivery and carries out what the core decided after it (`attempts`),
//! and answers the management API (`webhooks`, `deliveries`). It speaks to the world only through the ports
//! (`crate::ports`); `runtime::local` and `runtime::azure` choose the adapters and translate their triggers
//! into these calls.

mod access;
mod attempts;
mod cache;
mod deliveries;
mod health;
mod hydration;
mod intake;
pub mod metrics;
mod sources;
mod tenants;
mod versioned;
mod webhooks;

pub use access::{require_operator, TokenCache, TOKEN_CACHE_MAX_AGE};
pub use attempts::{span, Attempted, Handled, Step};
pub use cache::WebhookCache;
pub use deliveries::Health;
pub use intake::{Accepted, Preview, Published};
pub use sources::{Received, SourceCache, Unreceived};
pub use tenants::IssuedCredential;
pub use webhooks::ImportError;

use crate::ports::{
    Clock, DeliveryLog, DeliveryQueue, EventQueue, NewDeliveries, QueueError, RandomUnavailable, RateLimits,
    RejectedEvents, Sender, SourceStore, StoreError, TenantStore, WebhookStore,
};
use dispatcher_core::model::{Delivery, Job, Report};
use dispatcher_core::policy::retry::RetrySchedule;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Milliseconds since the Unix epoch as RFC 3339, e.g. `2026-11-22T10:30:00.123Z`: how answers and logs show a
/// time.
pub fn timestamp(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}

/// Where published events go: routed at once (local mode, which queues the deliveries), or queued to be routed
/// by whoever takes them (Azure: the events queue, and OnIncomingEvent).
pub enum Intake {
    Route,
    Queue(Arc<dyn EventQueue>),
}

/// What the service is built from.
pub struct Parts {
    /// `local` or `azure`, as `GET /info` says.
    pub mode: &'static str,
    pub webhooks: Arc<dyn WebhookStore>,
    pub tenants: Arc<dyn TenantStore>,
    /// The inbound sources and their receipts (read like the webhooks: `webhook_cache`).
    pub sources: Arc<dyn SourceStore>,
    /// How long the webhooks (and the tenants) read from the store are used before they are read again; `None` when this process
    /// makes every change (local mode), so that reading them again after its own changes is enough.
    pub webhook_cache: Option<Duration>,
    pub log: Arc<dyn DeliveryLog>,
    pub rejected: Arc<dyn RejectedEvents>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub rate_limits: Arc<dyn RateLimits>,
    pub intake: Intake,
    /// Where an event whose enrichers failed waits for its next try (the SQLite store locally, the events queue
    /// on Azure).
    pub event_retries: Arc<dyn EventQueue>,
    pub sender: Arc<dyn Sender>,
    pub clock: Arc<dyn Clock>,
    pub schedule: RetrySchedule,
    /// How long a webhook's attempts may all fail before it is disabled; `None`: never.
    pub disable_after: Option<Duration>,
    /// Whether the API checks an operator key: without one every caller is the operator, and tenants'
    /// credentials would promise what they cannot keep, so none is issued.
    pub operator_key: bool,
}

pub struct Service {
    mode: &'static str,
    webhooks: WebhookCache,
    tenants: Arc<dyn TenantStore>,
    tokens: TokenCache,
    sources_store: Arc<dyn SourceStore>,
    sources: SourceCache,
    log: Arc<dyn DeliveryLog>,
    rejected: Arc<dyn RejectedEvents>,
    queue: Arc<dyn DeliveryQueue>,
    rate_limits: Arc<dyn RateLimits>,
    intake: Intake,
    event_retries: Arc<dyn EventQueue>,
    /// Enrichers' answers, while their cache time lasts.
    answers: hydration::Answers,
    sender: Arc<dyn Sender>,
    clock: Arc<dyn Clock>,
    schedule: RetrySchedule,
    disable_after: Option<Duration>,
    operator_key: bool,
    /// Held while a tenant's registration counts its webhooks and writes (`create_webhook`).
    registering: tokio::sync::Mutex<()>,
    counters: Counters,
    metrics: metrics::Metrics,
}

/// Why the service could not do what was asked; `http::problem` answers each kind once.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The input is invalid: every problem, and what the input was.
    #[error("{what}: {report}")]
    Invalid { what: Invalid, report: Report },
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// The request contradicts what is stored (a webhook id taken).
    #[error("{0}")]
    Conflict(String),
    /// The delivery is being attempted right now.
    #[error("{0}")]
    InFlight(String),
    /// The client's `If-Match` names a version that is no longer the stored one.
    #[error("{0}")]
    PreconditionFailed(String),
    /// Something that should not fail did (the operating system's random generator).
    #[error("{0}")]
    Internal(String),
    /// The credential is malformed, unknown, revoked or expired (its words never quote it).
    #[error("{0}")]
    Unauthorized(String),
    /// The credential is valid but may not do this (a tenant's, a read-only one).
    #[error("{0}")]
    Forbidden(String),
    /// A tenant's webhook would hold attribute values outside its tenant's grants.
    #[error("outside the tenant's grants: {0}")]
    Ungranted(Report),
    /// A webhook names a tenant that does not exist, or (by a tenant's credential) another tenant.
    #[error("{0}")]
    WrongTenant(Report),
}

impl From<RandomUnavailable> for ServiceError {
    fn from(error: RandomUnavailable) -> Self {
        ServiceError::Internal(error.to_string())
    }
}

/// What was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    Event,
    Webhook,
    PatchedWebhook,
    Tenant,
    PatchedTenant,
    Credential,
    TransformTrial,
    Source,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::Event => "the event is invalid",
            Invalid::Webhook => "the webhook is invalid",
            Invalid::PatchedWebhook => "the patched webhook is invalid",
            Invalid::Tenant => "the tenant is invalid",
            Invalid::PatchedTenant => "the patched tenant is invalid",
            Invalid::Credential => "the credential request is invalid",
            Invalid::TransformTrial => "the transform to try is invalid",
            Invalid::Source => "the source is invalid",
        })
    }
}

/// What the dispatcher did since this process started.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

/// The counters read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CountersNow {
    pub accepted: u64,
    pub rejected: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn now(&self) -> CountersNow {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CountersNow {
            accepted: read(&self.accepted),
            rejected: read(&self.rejected),
            delivered: read(&self.delivered),
            retried: read(&self.retried),
            dead: read(&self.dead),
        }
    }
}

/// What `GET /info` says.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Info {
    pub name: &'static str,
    pub version: &'static str,
    /// `local` (one process, SQLite) or `azure` (Functions custom handler).
    pub mode: &'static str,
    /// Webhooks known to this process (on Azure: in its cache, 0 before the first read); the operator's only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<usize>,
    /// What this process did since it started (on Azure, instances come and go: each counts its own); the
    /// operator's only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters: Option<CountersNow>,
    /// For a tenant's credential: the tenant it acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// For a tenant's credential: whether it may only read.
    #[serde(skip_serializing_if = "Option::is_none", rename = "readOnly")]
    pub read_only: Option<bool>,
}

impl Service {
    pub fn new(parts: Parts) -> Service {
        Service {
            mode: parts.mode,
            webhooks: WebhookCache::new(parts.webhooks, parts.tenants.clone(), parts.webhook_cache),
            tenants: parts.tenants,
            sources_store: parts.sources.clone(),
            sources: SourceCache::new(parts.sources, parts.webhook_cache),
            tokens: TokenCache::new(parts.webhook_cache.map(|age| age.min(TOKEN_CACHE_MAX_AGE))),
            log: parts.log,
            rejected: parts.rejected,
            queue: parts.queue,
            rate_limits: parts.rate_limits,
            intake: parts.intake,
            event_retries: parts.event_retries,
            answers: hydration::Answers::default(),
            sender: parts.sender,
            clock: parts.clock,
            schedule: parts.schedule,
            disable_after: parts.disable_after,
            operator_key: parts.operator_key,
            registering: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
            metrics: metrics::Metrics::registered(),
        }
    }

    /// Counts a delivery's outcome, once for `/info` (this process's totals) and once for the metrics.
    fn count(&self, outcome: metrics::Outcome, webhook_id: &str) {
        let counter = match outcome {
            metrics::Outcome::Delivered => Some(&self.counters.delivered),
            metrics::Outcome::Retried => Some(&self.counters.retried),
            metrics::Outcome::Dead => Some(&self.counters.dead),
            metrics::Outcome::Skipped | metrics::Outcome::Filtered => None,
        };
        counter.into_iter().for_each(Counters::add);
        self.metrics.delivery(outcome, webhook_id);
    }

    /// Logs new deliveries, pending, then queues their first attempts in `queue`: a job is never queued for a
    /// delivery that is not logged. One that was logged before (a message routed again) is queued without a
    /// version, for the queue to decide (`NewDeliveries`).
    async fn submit(&self, deliveries: Vec<Delivery>, queue: &dyn NewDeliveries) -> Result<(), ServiceError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        let versions = self.log.log_deliveries(&deliveries, now_ms).await?;
        let jobs = deliveries.into_iter().zip(versions).map(|(delivery, version)| Job::first(delivery, version));
        queue.enqueue(jobs.collect(), now_ms).await?;
        Ok(())
    }

    /// Records the figures read rather than counted (the backlog, the webhooks by state) in the metrics, before
    /// they are read.
    pub async fn observe(&self) -> Result<(), ServiceError> {
        if let Some((pending, oldest_ms)) = self.queue.backlog().await? {
            self.metrics.backlog(pending, oldest_ms.map(|at| self.clock.now_ms() - at));
        }
        let webhooks = self.webhooks.get().await?;
        let disabled = webhooks.webhooks().iter().filter(|w| w.config.disabled).count() as u64;
        self.metrics.webhooks(webhooks.webhooks().len() as u64 - disabled, disabled);
        Ok(())
    }

    /// The webhooks as routing sees them.
    pub fn webhooks(&self) -> &WebhookCache {
        &self.webhooks
    }

    pub fn info(&self, access: &dispatcher_core::model::Access) -> Info {
        let operator = matches!(access, dispatcher_core::model::Access::Operator);
        Info {
            name: "public-event-dispatcher",
            version: env!("CARGO_PKG_VERSION"),
            mode: self.mode,
            webhooks: operator.then(|| self.webhooks.current().map_or(0, |set| set.len())),
            counters: operator.then(|| self.counters.now()),
            tenant: access.tenant().map(ToString::to_string),
            read_only: access.tenant().map(|_| access.read_only()),
        }
    }

    /// `prefix` + 32 random hex digits.
    fn random_id(&self, prefix: &str) -> Result<String, ServiceError> {
        let mut bytes = [0u8; 16];
        self.clock.fill_random(&mut bytes)?;
        Ok(bytes.iter().fold(prefix.to_owned(), |mut id, b| {
            id.push_str(&format!("{b:02x}"));
            id
        }))
    }

    /// A new signing secret, from 32 random bytes.
    fn new_secret(&self) -> Result<dispatcher_core::model::Secret, ServiceError> {
        let mut key = [0u8; 32];
        self.clock.fill_random(&mut key)?;
        Ok(dispatcher_core::model::Secret::from_key(&key))
    }
}

/// Runs `work` (which runs templates) on the blocking pool, not on an async worker; its panic is this task's.
async fn off_workers<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ServiceError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => Err(ServiceError::Internal("cancelled: the runtime is shutting down".to_owned())),
    }
}
