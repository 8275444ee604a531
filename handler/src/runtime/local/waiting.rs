//! The events waiting for their next try (their enrichers failed): kept in the store (`WaitingEvents`, the
//! `EventQueue` of local mode), taken when due and routed again through the service, which sends them on, waits
//! them once more or rejects them. Until `stop`; a try under way finishes first.

use super::LocalQueue;
use crate::adapters::sqlite::SqliteStore;
use crate::ports::{Clock, EventQueue, QueueError, SystemClock};
use crate::service::Service;
use async_trait::async_trait;
use dispatcher_core::dispatch::Source;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The store's waiting events, and a bell the loop hears: an event sent to wait sooner than the loop would
/// look is taken on time.
pub struct WaitingEvents {
    store: Arc<SqliteStore>,
    wake: Notify,
}

impl WaitingEvents {
    pub fn new(store: Arc<SqliteStore>) -> WaitingEvents {
        WaitingEvents { store, wake: Notify::new() }
    }
}

#[async_trait]
impl EventQueue for WaitingEvents {
    async fn send_event(&self, body: &[u8], source: &Source) -> Result<(), QueueError> {
        self.store.send_event(body, source).await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn send_event_later(&self, body: &[u8], source: &Source, attempt: u32, at_ms: i64) -> Result<(), QueueError> {
        self.store.send_event_later(body, source, attempt, at_ms).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// How many tries run at once: each may wait on its enrichers up to their timeout, so a slow API holds a slot,
/// not the loop; a slot freed is filled at once.
const TRIES: usize = 16;
/// How long a taken event belongs to this loop: past it (the try never reported back), it is due again.
const LEASE_MS: i64 = 120_000;
/// The longest the loop sleeps without being rung.
const IDLE: Duration = Duration::from_secs(1);

pub(super) async fn run(
    service: Arc<Service>,
    waiting: Arc<WaitingEvents>,
    queue: Arc<LocalQueue>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let store = &waiting.store;
    let slots = Arc::new(tokio::sync::Semaphore::new(TRIES));
    // The tries under way, waited for at the end (the caller bounds that wait; one cut off is due again).
    let tries = tokio_util::task::TaskTracker::new();
    while !*stop.borrow() {
        let now_ms = SystemClock.now_ms();
        let free = slots.available_permits();
        let taken = match free {
            0 => Vec::new(),
            _ => store.take_due_events(now_ms, free, LEASE_MS).await.unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot read the waiting events; trying again shortly");
                Vec::new()
            }),
        };
        let filled = taken.len() == free && free > 0;
        for waiting in taken {
            let Ok(slot) = slots.clone().try_acquire_owned() else { break };
            let (service, queue, store) = (service.clone(), queue.clone(), store.clone());
            tries.spawn(async move {
                let source = &waiting.source;
                match service.accept(&waiting.body, source, waiting.attempt, &*queue).await {
                    Ok(_) => {
                        if let Err(error) = store.event_done(&source.id, waiting.attempt).await {
                            // Tried again after its lease: its deliveries keep their ids, so nothing goes out twice.
                            tracing::warn!(event_id = %source.id, %error, "cannot forget a routed event");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(event_id = %source.id, %error, "the try failed; again after its lease")
                    }
                }
                drop(slot);
            });
        }
        if filled && slots.available_permits() > 0 {
            continue;
        }
        let next = store.next_event_due().await.ok().flatten();
        let wait =
            next.map_or(IDLE, |due| Duration::from_millis((due - now_ms).clamp(10, IDLE.as_millis() as i64) as u64));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = waiting.wake.notified() => {}
            // A slot freed: what is due can be taken.
            _ = slots.acquire(), if slots.available_permits() == 0 => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    tries.close();
    tries.wait().await;
}
