//! The delivery log: one item per delivery, in its webhook's partition, holding the delivery and every attempt.
//! Every change is a replace under optimistic concurrency (`If-Match` the etag it was read with), so that two
//! instances never overwrite each other's attempts.
//!
//! Requests per delivery: logging the new deliveries of an event runs concurrently, one create each. A job made
//! from that create carries the entry's version (its etag, its creation time, no attempts), from which the first
//! attempt's entry is written without a read; later attempts, and jobs nobody vouched for, read the entry first.
//! A delivery made in one attempt thus costs two requests: the create and the replace.

use super::query::{cut, etag_of, if_match, keyset_query, parameter, parse_cursor, point_read, query_all, with_cursor};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{DeliveryLog, LogKey, Page, StoreError};
use async_trait::async_trait;
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::{FeedScope, Query};
use dispatcher_core::model::{
    Attempt, CallbackType, Delivery, DeliveryCounts, DeliveryId, Job, LogEntry, LogVersion, Next, Status, Unsent,
    WebhookId,
};
use dispatcher_core::settle::Logged;
use futures_util::{StreamExt, TryStreamExt};

/// Callbacks logged before deliveries carried `callbackType` say what they are only by their event's name (a
/// callback type, never a public event's): the health queries leave them out too, until retention prunes them.
fn legacy_callbacks() -> [&'static str; 3] {
    CallbackType::ALL.map(CallbackType::as_str)
}

/// How many writes of one event's deliveries are in flight at once.
const CONCURRENT_WRITES: usize = 32;

/// How often a write that lost a race with another writer (412, or 409 on a create) reads and tries again.
const RACES: usize = 3;

/// A version of an entry: its etag, and what writing it without a read needs: how many attempts it holds and
/// when it was created. Written `"{attempts}:{created_at_ms}:{etag}"`.
struct Version {
    attempts: u32,
    created_at_ms: i64,
    etag: String,
}

impl Version {
    fn of(entry: &LogEntry, etag: String) -> Version {
        Version { attempts: entry.attempts.len() as u32, created_at_ms: entry.created_at_ms, etag }
    }

    fn token(&self) -> LogVersion {
        LogVersion::new(format!("{}:{}:{}", self.attempts, self.created_at_ms, self.etag))
    }

    fn parse(version: &LogVersion) -> Option<Version> {
        let mut parts = version.as_str().splitn(3, ':');
        let attempts = parts.next()?.parse().ok()?;
        let created_at_ms = parts.next()?.parse().ok()?;
        let etag = parts.next()?.to_owned();
        Some(Version { attempts, created_at_ms, etag })
    }
}

/// Why a conditional write did not happen.
enum Lost {
    /// Another writer got there first: read again.
    Race,
    Failed(StoreError),
}

impl CosmosStore {
    async fn deliveries(&self) -> Result<&ContainerClient, StoreError> {
        Ok(&self.containers().await?.deliveries)
    }

    /// The entry of `key` with its version, read from its webhook's partition.
    async fn read_entry(&self, key: LogKey<'_>) -> Result<Option<(LogEntry, Version)>, StoreError> {
        let read: Option<(LogEntry, Option<String>)> =
            point_read(self.deliveries().await?, key.webhook_id.as_str(), key.id.as_str(), "delivery").await?;
        Ok(read.map(|(entry, etag)| {
            let version = Version::of(&entry, etag.unwrap_or_default());
            (entry, version)
        }))
    }

    /// Creates `entry`; `Race` when it exists already.
    async fn create(&self, entry: &LogEntry) -> Result<Version, Lost> {
        let container = self.deliveries().await.map_err(Lost::Failed)?;
        let id = entry.delivery.id;
        let create = || container.create_item(entry.delivery.webhook_id.to_string(), id.as_str(), entry, None);
        match unthrottled("logging a delivery", BUDGET, create).await {
            Ok(response) => Ok(Version::of(entry, etag_of(&response))),
            Err(error) if error.status().is_conflict() => Err(Lost::Race),
            Err(error) => Err(Lost::Failed(cosmos("logging a delivery")(error))),
        }
    }

    /// Replaces the entry read as `read` with `entry`; `Race` when it changed meanwhile.
    async fn replace(&self, entry: &LogEntry, read: &Version) -> Result<Version, Lost> {
        let container = self.deliveries().await.map_err(Lost::Failed)?;
        let (partition, id) = (entry.delivery.webhook_id.to_string(), entry.delivery.id);
        let replace = || container.replace_item(partition.clone(), id.as_str(), entry, if_match(&read.etag));
        match unthrottled("writing a delivery", BUDGET, replace).await {
            Ok(response) => Ok(Version::of(entry, etag_of(&response))),
            Err(error) if error.status().is_precondition_failed() || error.status().is_not_found() => Err(Lost::Race),
            Err(error) => Err(Lost::Failed(cosmos("writing a delivery")(error))),
        }
    }

    /// Reads the entry of `delivery`, changes it with `change` (a new entry when it was never logged), and writes
    /// it back; again, from a fresh read, when another writer changed it meanwhile.
    async fn update(
        &self,
        delivery: &Delivery,
        now_ms: i64,
        change: impl Fn(&mut LogEntry),
    ) -> Result<Version, StoreError> {
        for _ in 0..RACES {
            let written = match self.read_entry(LogKey::of(delivery)).await? {
                Some((mut entry, read)) => {
                    change(&mut entry);
                    self.replace(&entry, &read).await
                }
                None => {
                    let mut entry = LogEntry::pending(delivery.clone(), now_ms);
                    change(&mut entry);
                    self.create(&entry).await
                }
            };
            match written {
                Ok(version) => return Ok(version),
                Err(Lost::Race) => continue,
                Err(Lost::Failed(error)) => return Err(error),
            }
        }
        Err(StoreError::Storage(format!("delivery {}: changed by others {RACES} times in a row", delivery.id)))
    }
}

#[async_trait]
impl DeliveryLog for CosmosStore {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<LogEntry>, StoreError> {
        // By id alone the partition is unknown: a query across partitions.
        let query = parameter(Query::from("SELECT * FROM c WHERE c.id = @id"), "@id", id.as_str())?;
        let found: Vec<LogEntry> =
            query_all(self.deliveries().await?, query, FeedScope::full_container(), "reading a delivery").await?;
        Ok(found.into_iter().next())
    }

    async fn list_deliveries(
        &self,
        webhook_id: &WebhookId,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<LogEntry>, StoreError> {
        let after = parse_cursor(cursor)?;
        // The partition key in the WHERE clause too: TOP then applies within the partition even on servers that
        // scope a query by the clause rather than by the partition key header (the local test server).
        let filter = match status {
            Some(_) => "c.webhookId = @webhook AND c.status = @status",
            None => "c.webhookId = @webhook",
        };
        let text = keyset_query("*", filter, "createdAtMs", limit, &after);
        let mut query = parameter(Query::from(text), "@webhook", webhook_id)?;
        if let Some(status) = status {
            query = parameter(query, "@status", status.as_str())?;
        }
        let entries: Vec<LogEntry> = query_all(
            self.deliveries().await?,
            with_cursor(query, &after)?,
            FeedScope::partition(webhook_id.to_string()),
            "listing deliveries",
        )
        .await?;
        Ok(cut(entries, limit, |e| (e.created_at_ms, e.delivery.id.to_string())))
    }

    async fn count_deliveries(&self, webhook_id: &WebhookId, since_ms: i64) -> Result<DeliveryCounts, StoreError> {
        // One count per status: GROUP BY is not on every server (nor in the SDK's cross-partition support).
        let container = self.deliveries().await?;
        let counts = Status::ALL.map(|status| async move {
            let text = "SELECT VALUE COUNT(1) FROM c WHERE c.webhookId = @webhook AND c.createdAtMs >= @since \
                        AND c.status = @status AND NOT IS_DEFINED(c.callbackType) \
                        AND NOT ARRAY_CONTAINS(@legacyCallbacks, c.event)";
            let query = parameter(Query::from(text), "@webhook", webhook_id)?;
            let query = parameter(parameter(query, "@since", since_ms)?, "@status", status.as_str())?;
            let query = parameter(query, "@legacyCallbacks", legacy_callbacks())?;
            let scope = FeedScope::partition(webhook_id.to_string());
            let found: Vec<u64> = query_all(container, query, scope, "counting deliveries").await?;
            Ok::<_, StoreError>((status, found.into_iter().sum::<u64>()))
        });
        let mut total = DeliveryCounts::default();
        for (status, n) in futures_util::future::try_join_all(counts).await? {
            total.add(status, n);
        }
        Ok(total)
    }

    async fn last_failure(&self, webhook_id: &WebhookId) -> Result<Option<LogEntry>, StoreError> {
        let text = "SELECT TOP 1 * FROM c WHERE c.webhookId = @webhook AND (c.status = @retrying OR c.status = @dead) \
                    AND NOT IS_DEFINED(c.callbackType) \
                    AND NOT ARRAY_CONTAINS(@legacyCallbacks, c.event) ORDER BY c.createdAtMs DESC";
        let query = parameter(Query::from(text), "@webhook", webhook_id)?;
        let query = parameter(query, "@retrying", Status::Retrying)?;
        let query = parameter(query, "@legacyCallbacks", legacy_callbacks())?;
        let query = parameter(query, "@dead", Status::Dead)?;
        let scope = FeedScope::partition(webhook_id.to_string());
        let found: Vec<LogEntry> = query_all(self.deliveries().await?, query, scope, "finding a failure").await?;
        Ok(found.into_iter().next())
    }

    async fn log_deliveries(
        &self,
        deliveries: &[Delivery],
        now_ms: i64,
    ) -> Result<Vec<Option<LogVersion>>, StoreError> {
        let creates = futures_util::stream::iter(deliveries.to_vec()).map(|delivery| async move {
            match self.create(&LogEntry::pending(delivery, now_ms)).await {
                Ok(version) => Ok(Some(version.token())),
                // Logged before: a redelivered message.
                Err(Lost::Race) => Ok(None),
                Err(Lost::Failed(error)) => Err(error),
            }
        });
        creates.buffered(CONCURRENT_WRITES).try_collect().await
    }

    async fn log_unsent(&self, unsent: &[Unsent], now_ms: i64) -> Result<(), StoreError> {
        let creates = futures_util::stream::iter(unsent.to_vec()).map(|unsent| async move {
            match self.create(&LogEntry::unsent(unsent, now_ms)).await {
                Ok(_) | Err(Lost::Race) => Ok(()),
                Err(Lost::Failed(error)) => Err(error),
            }
        });
        creates.buffered(CONCURRENT_WRITES).try_collect::<Vec<()>>().await.map(|_| ())
    }

    async fn logged(&self, key: LogKey<'_>) -> Result<Option<(Logged, LogVersion)>, StoreError> {
        let read = self.read_entry(key).await?;
        Ok(read.map(|(entry, version)| (Logged { status: entry.status, attempts: version.attempts }, version.token())))
    }

    async fn log_attempt(&self, job: &Job, attempt: Attempt, next: Next) -> Result<LogVersion, StoreError> {
        let n = job.attempt();
        // The first attempt of an entry known not to have changed since its creation: written without a read.
        let known = job.log_version.as_ref().and_then(Version::parse).filter(|v| v.attempts == 0 && n == 1);
        if let Some(read) = known {
            let mut entry = LogEntry::pending(job.delivery.clone(), read.created_at_ms);
            entry.record(n, attempt.clone(), next.clone());
            match self.replace(&entry, &read).await {
                Ok(version) => return Ok(version.token()),
                Err(Lost::Race) => {}
                Err(Lost::Failed(error)) => return Err(error),
            }
        }
        let version =
            self.update(&job.delivery, attempt.at_ms, |entry| entry.record(n, attempt.clone(), next.clone())).await?;
        Ok(version.token())
    }

    async fn give_up(&self, delivery: &Delivery, reason: &str, now_ms: i64) -> Result<(), StoreError> {
        let dead = || Next::Dead { reason: reason.to_owned() };
        self.update(delivery, now_ms, |entry| entry.settle(dead())).await.map(|_| ())
    }

    async fn reopen(&self, id: DeliveryId, now_ms: i64) -> Result<Option<Job>, StoreError> {
        // Nothing here knows whether an attempt is under way (Service Bus holds the jobs): always reopened.
        let Some(entry) = self.get_delivery(id).await? else { return Ok(None) };
        let version = self.update(&entry.delivery, now_ms, |entry| entry.reopen(now_ms)).await?;
        let attempts_made = version.attempts;
        Ok(Some(Job {
            delivery: entry.delivery,
            attempts_made,
            log_version: Some(version.token()),
            rate_slot_ms: None,
        }))
    }
}
