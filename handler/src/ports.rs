//! The ports: what the service needs from the world, as traits. Adapters implement them (`adapters/`), runtimes
//! pick which (`runtime/`), and the service (`service/`) is written once against them.
//!
//! - [`WebhookStore`], [`TenantStore`], [`SourceStore`], [`DeliveryLog`], [`RejectedEvents`]: what is kept (SQLite
//!   locally, Cosmos DB on Azure).
//! - [`NewDeliveries`], [`DeliveryQueue`]: where new deliveries go, and when each is attempted (the local
//!   workers' queue, or Service Bus; OnIncomingEvent's output binding takes new deliveries only).
//! - [`RateLimits`]: each rate-limited webhook's next free slot (in memory locally, Cosmos DB on Azure).
//! - [`EventQueue`]: where a published event waits to be routed, when it is not routed at once (Service Bus).
//! - [`Sender`]: one HTTP request on the wire.
//! - [`Clock`]: the time, and random bytes.

use async_trait::async_trait;
use dispatcher_core::dispatch::Source;
use dispatcher_core::inbound::SourceRecord;
use dispatcher_core::model::{
    Attempt, Delivery, DeliveryCounts, DeliveryId, Job, LogEntry, LogVersion, Next, Rejected, Status, Tenant, TenantId,
    Token, Unsent, Webhook, WebhookId,
};
use dispatcher_core::policy::outcome::Response;
use dispatcher_core::request::Request;
use dispatcher_core::settle::Logged;
use std::num::NonZeroU32;

/// A page of items, newest first, and the opaque cursor of the next page when there is one.
pub type Page<T> = (Vec<T>, Option<String>);

/// Where the next page of a list starts: a position (a time, or a sequence number) and, to break ties, an id.
/// Written `{position}` or `{position}:{the id's bytes in hex}`, so that every string of that shape (the
/// API's [`CURSOR_PATTERN`]) is a position, whichever store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub position: i64,
    pub id: String,
}

/// The shape of a cursor, as the API documents it (empty: the first page).
pub const CURSOR_PATTERN: &str = "^([0-9]{1,18}(:([0-9a-f]{2})*)?)?$";

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadCursor(text.to_owned());
        let (digits, hex) = text.split_once(':').unwrap_or((text, ""));
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let pairs = hex.as_bytes().chunks(2);
        let byte = |pair: &[u8]| {
            let digit = |b: u8| (b as char).to_digit(16).filter(|_| !b.is_ascii_uppercase());
            Some((digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?) as u8)
        };
        let bytes = pairs.map(byte).collect::<Option<Vec<u8>>>().ok_or_else(bad)?;
        Ok(Cursor { position: digits.parse().map_err(|_| bad())?, id: String::from_utf8_lossy(&bytes).into_owned() })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.position)?;
        if !self.id.is_empty() {
            f.write_str(":")?;
            self.id.bytes().try_for_each(|b| write!(f, "{b:02x}"))?;
        }
        Ok(())
    }
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cursor: {0:?} is not a cursor: the nextCursor of a previous page")]
    BadCursor(String),
    /// A conditional write found the item changed since it was read (or, creating it, already there).
    #[error("{0}")]
    Conflict(String),
}

/// The version of a stored webhook or tenant, new with every write: a random number (SQLite) or the item's etag
/// (Cosmos DB). Opaque, printable ASCII without double quotes: compared, and shown to API clients as the `ETag`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Registered webhooks, with their signing secrets. Every write is conditional, so that two changes made from
/// the same read cannot undo each other: the service re-reads and applies its change again on a
/// [`StoreError::Conflict`] (`service/webhooks.rs`, `update_webhook`).
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Creates the webhook when `expected` is `None` (a conflict when its id is taken), else replaces it when
    /// its stored version is still `expected` (a conflict when it changed or is gone). Returns its new version.
    async fn put_webhook(&self, webhook: &Webhook, expected: Option<&Version>) -> Result<Version, StoreError>;
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError>;
    /// Every webhook, oldest first.
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Whether there was one to delete. (Its deliveries still queued end dead when their turn comes.)
    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError>;
}

/// The tenants and their tokens (token hashes only). Tenant writes are conditional like the webhooks'.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates the tenant when `expected` is `None` (a conflict when its id is taken), else replaces it when its
    /// stored version is still `expected`. Returns its new version.
    async fn put_tenant(&self, tenant: &Tenant, expected: Option<&Version>) -> Result<Version, StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, Version)>, StoreError>;
    /// Every tenant, oldest first.
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Deletes the tenant and its tokens; whether there was one.
    async fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError>;
    /// Keeps a new token (a conflict when its id is taken).
    async fn put_token(&self, token: &Token) -> Result<(), StoreError>;
    async fn get_token(&self, id: &str) -> Result<Option<Token>, StoreError>;
    /// A tenant's tokens, oldest first, expired ones left out.
    async fn list_tokens(&self, tenant: &TenantId, now_ms: i64) -> Result<Vec<Token>, StoreError>;
    /// Revokes a tenant's token; whether it had one of that id.
    async fn delete_token(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError>;
}

/// The sources inbound webhooks arrive at (their secrets sealed at rest by `adapters::sealed`), and the receipts
/// a provider's repeat is recognised by. Source writes are conditional like the webhooks'.
#[async_trait]
pub trait SourceStore: Send + Sync {
    /// Creates the source when `expected` is `None` (a conflict when its id is taken), else replaces it when its
    /// stored version is still `expected`. Returns its new version.
    async fn put_source(&self, source: &SourceRecord, expected: Option<&Version>) -> Result<Version, StoreError>;
    async fn get_source(&self, id: &str) -> Result<Option<(SourceRecord, Version)>, StoreError>;
    /// Every source, oldest first.
    async fn list_sources(&self) -> Result<Vec<SourceRecord>, StoreError>;
    /// Whether there was one to delete (its receipts stay until they age out).
    async fn delete_source(&self, id: &str) -> Result<bool, StoreError>;
    /// Whether source `source` received the request known by `key` at `since_ms` or later.
    async fn received(&self, source: &str, key: &str, since_ms: i64) -> Result<bool, StoreError>;
    /// Records that source `source` received (and published) the request known by `key` at `at_ms`; receipts
    /// older than the store's window may be forgotten.
    async fn record_receipt(&self, source: &str, key: &str, at_ms: i64) -> Result<(), StoreError>;
}

/// Which delivery a log entry is: its id, and its webhook's, which a store may partition the log by (Cosmos DB
/// does, so that reading an entry is a point read rather than a query across partitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey<'a> {
    pub id: DeliveryId,
    pub webhook_id: &'a WebhookId,
}

impl<'a> LogKey<'a> {
    pub fn of(delivery: &'a Delivery) -> LogKey<'a> {
        LogKey { id: delivery.id, webhook_id: &delivery.webhook_id }
    }
}

/// Every delivery with its attempts.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<LogEntry>, StoreError>;
    /// A webhook's deliveries (those in `status` only, when given), newest first: `limit` of them after the
    /// cursor of a previous page.
    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<LogEntry>, StoreError>;
    /// How many of a webhook's deliveries to its URL (callbacks left out) created at or after `since_ms` stand in
    /// each status.
    async fn count_deliveries(&self, webhook_id: &WebhookId, since_ms: i64) -> Result<DeliveryCounts, StoreError>;
    /// The newest of a webhook's deliveries to its URL (callbacks left out) that is now retrying or dead.
    async fn last_failure(&self, webhook_id: &WebhookId) -> Result<Option<LogEntry>, StoreError>;
    /// Logs new deliveries, pending; a delivery logged before is left as it is (a redelivered message). Returns,
    /// for each delivery, the version of its entry when this call created it, `None` when it was there already.
    async fn log_deliveries(&self, deliveries: &[Delivery], now_ms: i64)
        -> Result<Vec<Option<LogVersion>>, StoreError>;
    /// Logs deliveries routing decided not to make (their webhook disabled, their transform making nothing or
    /// failing), settled with their status and reason; a delivery logged before is left as it is.
    async fn log_unsent(&self, unsent: &[Unsent], now_ms: i64) -> Result<(), StoreError>;
    /// Where a delivery stands, read before an attempt that nobody vouched for (see [`Job::log_version`]), with
    /// the version of its entry; `None` when it was never logged.
    async fn logged(&self, key: LogKey<'_>) -> Result<Option<(Logged, LogVersion)>, StoreError>;
    /// Logs the attempt of `job` (a job's attempt logged again replaces its entry) and what comes next. Returns
    /// the entry's new version; logs the delivery first when it was never logged (its entry expired, or its job
    /// came from elsewhere).
    async fn log_attempt(&self, job: &Job, attempt: Attempt, next: Next) -> Result<LogVersion, StoreError>;
    /// Ends a delivery dead without an attempt (its webhook is gone, or the queue gave it up), keeping the
    /// attempts made; logs it first when it was never logged.
    async fn give_up(&self, delivery: &Delivery, reason: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Makes a delivery due again now, keeping its id and attempts (a manual retry). The entry's job, or `None`
    /// when it is being attempted right now (or was never logged).
    async fn reopen(&self, id: DeliveryId, now_ms: i64) -> Result<Option<Job>, StoreError>;
}

/// Events that were refused, with why.
#[async_trait]
pub trait RejectedEvents: Send + Sync {
    async fn reject(&self, rejected: &Rejected) -> Result<(), StoreError>;
    /// Newest first, `limit` of them after the cursor of a previous page.
    async fn list_rejected(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Rejected>, StoreError>;
}

/// Why a queue could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

/// Where the first attempts of new deliveries wait. Queues only: the service has logged each delivery before
/// (`DeliveryLog::log_deliveries`), and a job carries its entry's version, or none for a delivery that was
/// logged before (a message routed again), whose first job may or may not have been queued then.
#[async_trait]
pub trait NewDeliveries: Send + Sync {
    /// Queues the jobs of first attempts, at `now_ms`; returns once they are kept.
    async fn enqueue(&self, jobs: Vec<Job>, now_ms: i64) -> Result<(), QueueError>;
}

/// When each delivery is attempted: new deliveries queued for a first attempt, failed ones for a retry.
#[async_trait]
pub trait DeliveryQueue: NewDeliveries {
    /// Queues `job` (whose log entry says so already) for `at_ms`: a retry after a failed attempt.
    async fn schedule(&self, job: &Job, at_ms: i64) -> Result<(), QueueError>;
    /// Queues a job now that was reopened in the log (a manual retry): never dropped as a duplicate.
    async fn resend(&self, job: &Job) -> Result<(), QueueError>;
    /// Queues `job` again for `at_ms`, its log entry unchanged: it waits for its rate-limit slot, which is not
    /// an attempt.
    async fn defer(&self, job: &Job, at_ms: i64) -> Result<(), QueueError>;
    /// How many deliveries wait for an attempt, and when the oldest of them was created; `None` where the queue
    /// cannot tell cheaply (Service Bus reports its own queue length to Azure Monitor).
    async fn backlog(&self) -> Result<Option<(u64, Option<i64>)>, QueueError> {
        Ok(None)
    }
}

/// Each rate-limited webhook's next free slot (`policy::rate`), shared by everything that sends to it.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Reserves the next slot of a webhook limited to `limit` deliveries a second for a delivery asking at
    /// `now_ms`: when it may go (`now_ms` or later). `None` when no slot could be taken now (other instances
    /// kept taking it first): ask again a little later.
    async fn reserve(&self, webhook_id: &WebhookId, limit: NonZeroU32, now_ms: i64) -> Result<Option<i64>, StoreError>;
}

/// Where published events wait to be routed: when they are not routed at once, and when their enrichers
/// failed and they wait for their next try.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Sends the event's exact body under its source: the id its delivery ids derive from, its correlation id
    /// and trace context.
    async fn send_event(&self, body: &[u8], source: &Source) -> Result<(), QueueError>;
    /// Sends the event again, to be routed at `at_ms` for the `attempt`-th time (2 is its first retry), under
    /// the same source: its deliveries keep their ids.
    async fn send_event_later(&self, body: &[u8], source: &Source, attempt: u32, at_ms: i64) -> Result<(), QueueError>;
}

/// The message id of an event sent again for its `attempt`-th try (`{id}#try-{attempt}`): unique per try, so
/// that duplicate detection drops a try sent twice and not the next one.
pub fn retry_message_id(source_id: &str, attempt: u32) -> String {
    format!("{source_id}#try-{attempt}")
}

/// One HTTP request on the wire.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Sends `request`; never fails: every failure is a [`Response::Failed`] with its reason. Returns what came
    /// back and what the attempt log keeps of it.
    async fn send(&self, request: Request<'_>) -> (Response, Attempt);
}

/// The time and random bytes: the only two things of the world the core's decisions depend on.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Fills `bytes` from the operating system's generator.
    fn fill_random(&self, bytes: &mut [u8]) -> Result<(), RandomUnavailable>;
}

/// The operating system's random generator failed: nothing that needs a secret or an id can be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct RandomUnavailable(pub String);

/// The system clock and the operating system's random generator.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }

    fn fill_random(&self, bytes: &mut [u8]) -> Result<(), RandomUnavailable> {
        getrandom::fill(bytes).map_err(|e| RandomUnavailable(e.to_string()))
    }
}
