//! The local delivery queue (`ports::DeliveryQueue`): the deliveries table of the SQLite store, where a
//! delivery is due when its `next_attempt_at` has passed. A new delivery is logged leased to this queue
//! (`SqliteStore::claiming_new`), which hands it to the workers in memory while they keep up (`hand_off.rs`)
//! and otherwise lets the workers' next lease make it due; and a note of when the store may next hold a due
//! delivery that no worker has in memory, so that the workers ask it only then.

use super::backoff::StoreBackoff;
use super::hand_off::HandOff;
use crate::adapters::sqlite::SqliteStore;
use crate::ports::{DeliveryQueue, NewDeliveries, QueueError, StoreError};
use async_trait::async_trait;
use dispatcher_core::model::{DeliveryId, Job, LogVersion, WebhookId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub struct LocalQueue {
    pub(super) store: Arc<SqliteStore>,
    /// Deliveries accepted by this process and leased to it at once, for the workers to take from memory.
    pub(super) hand_off: Mutex<HandOff>,
    /// When the store may next hold a due delivery that no worker has in memory.
    pub(super) due: DueHint,
    /// Rung when deliveries become due sooner than the workers expect.
    pub(super) wake: Notify,
    /// How long a leased delivery belongs to this process: past that, it is due again (its attempt was lost).
    pub(super) lease_ms: i64,
    /// How long the workers leave a failing store alone.
    pub(super) backoff: StoreBackoff,
    /// The rate-limit slots of deliveries waiting in the store for them, given back to their jobs when leased.
    /// Lost on a restart, when those deliveries reserve slots again.
    slots: Mutex<HashMap<DeliveryId, i64>>,
    /// New deliveries, logged leased to this process, that the workers had no room for: the next lease makes
    /// them due in the same write. Lost on a restart, which releases every lease.
    unclaimed: Mutex<Vec<LogVersion>>,
}

/// How long a new delivery may wait in memory for a worker: its lease (the request timeout and a minute more)
/// must outlast its attempt, or the store would hand it out again.
const HOLD_MS: i64 = 30_000;

impl LocalQueue {
    /// The queue on `store`, which it makes log new deliveries leased to it for `lease_ms` (the store's
    /// leases and the queue's hand-off are one mechanism: a store that logged them due would hand them out twice).
    pub fn new(store: SqliteStore, lease_ms: i64) -> LocalQueue {
        LocalQueue {
            store: Arc::new(store.claiming_new(lease_ms)),
            hand_off: Mutex::default(),
            // Whatever a previous run left is due now.
            due: DueHint::new(0),
            wake: Notify::new(),
            lease_ms,
            backoff: StoreBackoff::default(),
            slots: Mutex::default(),
            unclaimed: Mutex::default(),
        }
    }

    /// New deliveries leased to this queue and not started: held in memory, or waiting for the next lease.
    pub(super) fn not_started(&self) -> usize {
        let held = self.hand_off.lock().map_or(0, |h| h.len());
        held + self.unclaimed.lock().map_or(0, |u| u.len())
    }

    /// The store, which is also the delivery log of local mode.
    pub fn store(&self) -> &Arc<SqliteStore> {
        &self.store
    }

    /// Up to `limit` new deliveries held in memory, passing over the webhooks in `saturated`. Those held too
    /// long are let go: the store makes them due when their lease runs out, and the workers are told when.
    pub(super) fn take_handed_off(&self, limit: usize, saturated: &[WebhookId], now_ms: i64) -> Vec<Job> {
        let Ok(mut hand_off) = self.hand_off.lock() else { return Vec::new() };
        let (jobs, let_go) = hand_off.take(limit, saturated, now_ms);
        if let_go > 0 {
            tracing::debug!(let_go, "deliveries held in memory too long are left to their lease");
            self.due.note(now_ms - HOLD_MS + self.lease_ms);
        }
        jobs
    }

    /// Leases up to `limit` due deliveries, skipping the webhooks in `skip`, each with the slot it reserved.
    pub(super) async fn lease(&self, now_ms: i64, limit: usize, skip: Vec<String>) -> Result<Vec<Job>, StoreError> {
        let release = self.unclaimed.lock().map(|mut unclaimed| std::mem::take(&mut *unclaimed)).unwrap_or_default();
        let leased = self.store.lease(now_ms, limit, self.lease_ms, skip, &release).await;
        let mut jobs = match leased {
            Ok(jobs) => jobs,
            Err(error) => {
                if let Ok(mut unclaimed) = self.unclaimed.lock() {
                    unclaimed.extend(release);
                }
                return Err(error);
            }
        };
        if let Ok(mut slots) = self.slots.lock() {
            if !slots.is_empty() {
                jobs.iter_mut().for_each(|job| job.rate_slot_ms = slots.remove(&job.delivery.id));
            }
        }
        Ok(jobs)
    }
}

#[async_trait]
impl NewDeliveries for LocalQueue {
    /// The deliveries' rows are their queue already (the log is the queue), logged leased to this process
    /// (`SqliteStore::claiming_new`): when the workers have room, hands them over in memory, which spares the
    /// store a lease per delivery; else leaves them to the workers' next lease, which makes them due first.
    async fn enqueue(&self, jobs: Vec<Job>, now_ms: i64) -> Result<(), QueueError> {
        // A delivery logged before is in its row, as due as it is.
        let jobs: Vec<Job> = jobs.into_iter().filter(|job| job.log_version.is_some()).collect();
        if jobs.is_empty() {
            return Ok(());
        }
        // Deliveries already waiting in the store go first: new ones queue behind them there.
        let mut jobs = Some(jobs);
        if self.due.at() > now_ms {
            if let Ok(mut hand_off) = self.hand_off.lock() {
                let n = jobs.as_ref().map_or(0, Vec::len);
                if hand_off.has_room_for(n) {
                    let take_by_ms = now_ms + HOLD_MS;
                    jobs.take().into_iter().flatten().for_each(|job| hand_off.push(job, take_by_ms));
                }
            }
        }
        if let Some(jobs) = jobs {
            if let Ok(mut unclaimed) = self.unclaimed.lock() {
                unclaimed.extend(jobs.into_iter().filter_map(|job| job.log_version));
            }
            self.due.note(now_ms);
        }
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueue for LocalQueue {
    /// The delivery's row says when already (its log is this queue): the workers only need to know, at once
    /// when they sleep until later.
    async fn schedule(&self, _job: &Job, at_ms: i64) -> Result<(), QueueError> {
        if self.due.note(at_ms) {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The delivery's row is due now already (reopened in the log): the workers only need to know.
    async fn resend(&self, _job: &Job) -> Result<(), QueueError> {
        self.due.note(i64::MIN);
        self.wake.notify_one();
        Ok(())
    }

    async fn backlog(&self) -> Result<Option<(u64, Option<i64>)>, QueueError> {
        Ok(Some(self.store.backlog().await?))
    }

    async fn defer(&self, job: &Job, at_ms: i64) -> Result<(), QueueError> {
        if let (Some(slot), Ok(mut slots)) = (job.rate_slot_ms, self.slots.lock()) {
            slots.insert(job.delivery.id, slot);
        }
        self.store.defer(job, at_ms).await?;
        if self.due.note(at_ms) {
            self.wake.notify_one();
        }
        Ok(())
    }
}

/// When the store may next hold a due delivery that no worker has in memory (`i64::MAX`: none known). The
/// workers ask the store only from then on; whoever makes a delivery due in the store notes it here.
pub(super) struct DueHint(Mutex<DueState>);

struct DueState {
    at_ms: i64,
    /// Counts the notes, so that a worker never overwrites one it has not seen.
    notes: u64,
}

impl DueHint {
    pub(super) fn new(at_ms: i64) -> DueHint {
        DueHint(Mutex::new(DueState { at_ms, notes: 0 }))
    }

    pub(super) fn at(&self) -> i64 {
        self.0.lock().map_or(i64::MIN, |s| s.at_ms)
    }

    /// Notes a delivery due at `at_ms`; true when that is sooner than anything noted before.
    pub(super) fn note(&self, at_ms: i64) -> bool {
        let Ok(mut state) = self.0.lock() else { return false };
        let sooner = at_ms < state.at_ms;
        state.at_ms = state.at_ms.min(at_ms);
        state.notes += 1;
        sooner
    }

    pub(super) fn snapshot(&self) -> (i64, u64) {
        self.0.lock().map_or((i64::MIN, 0), |s| (s.at_ms, s.notes))
    }

    /// After the store was found drained up to now: the next due time it reported, unless a delivery was made
    /// due since the `notes` of the snapshot taken before asking it.
    pub(super) fn drained(&self, notes: u64, next_ms: i64) {
        if let Ok(mut state) = self.0.lock() {
            if state.notes == notes {
                state.at_ms = next_ms;
            }
        }
    }
}
