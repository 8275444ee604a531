//! What the dispatcher keeps: webhooks, the delivery log with every attempt, and rejected events; one trait
//! each, so that the API and the functions work the same over every store. `sqlite.rs` keeps them in one local
//! file (and doubles as the local delivery queue); `tests/store_suite.rs` is the behaviour every store passes.

pub mod cosmos;
pub mod sqlite;

use crate::delivery::sender::AttemptRecord;
use crate::delivery::signing::Secret;
use crate::dispatch::DeliveryId;
use crate::validation::Problem;
use crate::webhooks::{Webhook, WebhookConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long a rotated-out secret keeps signing alongside the new one.
pub const SECRET_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// A page of items, newest first, and the opaque cursor of the next page when there is one.
pub type PageResult<T> = Result<(Vec<T>, Option<String>), StoreError>;

/// Registered webhooks, with their signing secrets.
#[async_trait::async_trait]
pub trait Webhooks: Send + Sync {
    /// Creates or replaces the webhook with this id.
    async fn put_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError>;
    async fn get_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError>;
    /// Every webhook, oldest first.
    async fn list_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError>;
    /// Whether there was one to delete. (Its deliveries still queued end dead when their turn comes.)
    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;
}

/// Every delivery with its attempts.
#[async_trait::async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError>;
    /// A webhook's deliveries, newest first: `limit` of them after the cursor of a previous page.
    async fn list_deliveries(&self, webhook_id: &str, limit: usize, cursor: Option<&str>)
        -> PageResult<DeliveryRecord>;
    /// Logs a delivery about to be made, pending. Logging the same id again changes nothing (redelivery).
    async fn log_delivery(&self, delivery: &NewDelivery, now_ms: i64) -> Result<(), StoreError>;
    /// Logs attempt `n` (1-based; logging the same `n` again replaces it) and what comes next. False when the
    /// delivery was never logged.
    async fn log_attempt(
        &self,
        key: LogKey<'_>,
        n: u32,
        attempt: AttemptRecord,
        next: Next,
    ) -> Result<bool, StoreError>;
    /// Ends a delivery dead without a new attempt (its webhook is gone, or the queue gave it up), keeping the
    /// attempts made. False when the delivery was never logged.
    async fn give_up(&self, key: LogKey<'_>, reason: &str) -> Result<bool, StoreError>;
}

/// Events that were refused, with why.
#[async_trait::async_trait]
pub trait RejectedEvents: Send + Sync {
    async fn reject(&self, rejected: Rejected) -> Result<(), StoreError>;
    /// Newest first, `limit` of them after the cursor of a previous page.
    async fn list_rejected(&self, limit: usize, cursor: Option<&str>) -> PageResult<Rejected>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    #[error("cursor: {0:?} is not a cursor this store gave out")]
    BadCursor(String),
}

/// A registered webhook with what only the dispatcher sees: its signing secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredWebhook {
    pub id: Arc<str>,
    #[serde(flatten)]
    pub config: WebhookConfig,
    pub secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Why the dispatcher disabled it (a 410 answer), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub secret: Secret,
    pub expires_at_ms: i64,
}

impl StoredWebhook {
    /// The secrets that sign a delivery now: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&Secret> {
        let previous = self.previous_secret.as_ref().filter(|p| p.expires_at_ms > now_ms).map(|p| &p.secret);
        std::iter::once(&self.secret).chain(previous).collect()
    }

    /// This webhook disabled by the dispatcher, for `reason` (a 410 answer).
    pub fn disabled(&self, reason: String, now_ms: i64) -> StoredWebhook {
        let mut disabled = self.clone();
        disabled.config.disabled = true;
        disabled.disabled_reason = Some(reason);
        disabled.updated_at_ms = now_ms;
        disabled
    }

    /// What routing needs.
    pub fn routing(&self) -> Webhook {
        Webhook { id: self.id.clone(), config: self.config.clone() }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not attempted yet.
    Pending,
    /// Attempted, failed, and due again at `nextAttemptAt`.
    Retrying,
    Succeeded,
    /// Given up: see `deadReason`.
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Retrying => "retrying",
            Status::Succeeded => "succeeded",
            Status::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Pending, Status::Retrying, Status::Succeeded, Status::Dead].into_iter().find(|s| s.as_str() == text)
    }
}

/// A delivery to make, as the dispatcher accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: DeliveryId,
    pub webhook_id: Arc<str>,
    pub event: String,
    pub body: Vec<u8>,
    pub source_id: String,
    pub correlation_id: Option<String>,
}

impl NewDelivery {
    pub fn key(&self) -> LogKey<'_> {
        LogKey { id: self.id, webhook_id: &self.webhook_id }
    }
}

/// Which delivery a log entry is: its id, and its webhook's, which a store may partition the log by (Cosmos DB
/// does, so that updating an entry is a point read rather than a query across partitions). An id logged under
/// another webhook is not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogKey<'a> {
    pub id: DeliveryId,
    pub webhook_id: &'a str,
}

/// A delivery leased for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Where the delivery sits in the local queue: its row, so that recording the attempt needs no id lookup.
    pub seq: i64,
    pub delivery: NewDelivery,
    /// Attempts made before this one.
    pub attempts_made: u32,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    RetryAt { at_ms: i64 },
    Dead { reason: String },
}

impl Next {
    /// What a store keeps of it: the delivery's status, its next attempt, and why it is dead.
    pub fn columns(self) -> (Status, Option<i64>, Option<String>) {
        match self {
            Next::Succeeded => (Status::Succeeded, None, None),
            Next::RetryAt { at_ms } => (Status::Retrying, Some(at_ms), None),
            Next::Dead { reason } => (Status::Dead, None, Some(reason)),
        }
    }
}

/// A delivery with its whole attempt log.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub webhook_id: String,
    pub event: String,
    pub status: Status,
    /// The exact body sent (and to be sent).
    pub payload: Box<serde_json::value::RawValue>,
    pub source_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub created_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_reason: Option<String>,
    pub attempts: Vec<AttemptRecord>,
}

/// An event that was refused, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub id: String,
    pub received_at_ms: i64,
    pub problems: Vec<Problem>,
    /// The start of what was received (at most 4 KiB).
    pub body: String,
}

pub const REJECTED_BODY_KEPT: usize = 4096;
