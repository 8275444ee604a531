//! The delivery workers of local mode.
//!
//! Jobs come from two places: new deliveries, logged leased to this process and handed over in memory (the
//! fast path while the workers keep up), and deliveries due in the store (retries, the overflow of a burst,
//! whatever a previous run left). Each job is attempted in its own task, at most `--concurrency` at a time, and
//! at most three quarters of them for one webhook, so that a slow or failing webhook never starves the others.
//! A task frees its slot as soon as the receiver has answered; recording the outcome does not hold up sending.

use super::queue::LocalQueue;
use crate::service::{self, Service, Step};
use dispatcher_core::model::{Job, WebhookId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The longest the workers sleep without looking at the store again.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// While some webhooks use their whole share, how often at most the store is asked for the others' due
/// deliveries. Finding them means reading past the saturated webhooks' ones, so not after every attempt.
const SATURATED_POLL: Duration = Duration::from_millis(100);

struct Pool {
    /// One permit per attempt under way (`--concurrency`).
    slots: Arc<Semaphore>,
    /// Every attempt's task, until its outcome is recorded: shutting down waits for all of them.
    tasks: TaskTracker,
    /// Attempts under way per webhook.
    in_flight: Mutex<HashMap<WebhookId, usize>>,
    per_webhook: usize,
}

impl Pool {
    /// Webhooks that use their whole share of the slots.
    fn saturated(&self) -> Vec<WebhookId> {
        let in_flight = self.in_flight.lock();
        in_flight
            .map(|m| m.iter().filter(|(_, n)| **n >= self.per_webhook).map(|(id, _)| id.clone()).collect())
            .unwrap_or_default()
    }

    fn started(&self, webhook_id: &WebhookId) {
        if let Ok(mut m) = self.in_flight.lock() {
            *m.entry(webhook_id.clone()).or_default() += 1;
        }
    }

    /// Returns whether the webhook was saturated (so its deliveries waiting in the store can go now).
    fn finished(&self, webhook_id: &WebhookId) -> bool {
        let Ok(mut m) = self.in_flight.lock() else { return false };
        let Some(n) = m.get_mut(webhook_id) else { return false };
        let was_saturated = *n >= self.per_webhook;
        *n -= 1;
        if *n == 0 {
            m.remove(webhook_id);
        }
        was_saturated
    }
}

/// How the workers run.
#[derive(Debug, Clone, Copy)]
pub struct Workers {
    /// Deliveries in flight at once; one webhook holds at most three quarters of them.
    pub concurrency: usize,
    /// On shutdown, how long in-flight deliveries may take to finish.
    pub shutdown_grace: Duration,
}

/// Runs the workers until `stop` turns true, then lets in-flight deliveries finish, up to the grace period;
/// whatever is left is due again at the next start.
pub async fn run(service: Arc<Service>, queue: Arc<LocalQueue>, workers: Workers, mut stop: watch::Receiver<bool>) {
    let concurrency = workers.concurrency.max(1);
    let pool = Arc::new(Pool {
        slots: Arc::new(Semaphore::new(concurrency)),
        tasks: TaskTracker::new(),
        in_flight: Mutex::default(),
        per_webhook: (concurrency * 3 / 4).max(1),
    });
    let mut last_saturated_lease = None;
    while !*stop.borrow() {
        let wait = queue.backoff.wait();
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let jobs = next_jobs(&service, &queue, &pool, &mut last_saturated_lease).await;
        if jobs.is_empty() {
            let until_due = queue.due.at().saturating_sub(service.now_ms()).max(1) as u64;
            tokio::select! {
                _ = queue.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(until_due).min(IDLE_POLL)) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // Jobs leased as the stop came are not started: their leases are released at the next start.
        for job in jobs.into_iter().take_while(|_| !*stop.borrow()) {
            spawn_attempt(&service, &queue, &pool, job).await;
        }
    }
    pool.tasks.close();
    let not_started = queue.not_started();
    if not_started > 0 {
        tracing::info!(not_started, "new deliveries not started stay leased: they are due again at the next start");
    }
    let in_flight = pool.tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "waiting for the deliveries in flight");
    }
    if tokio::time::timeout(workers.shutdown_grace, pool.tasks.wait()).await.is_err() {
        tracing::warn!(
            unfinished = pool.tasks.len(),
            grace = ?workers.shutdown_grace,
            "deliveries still in flight after the grace period stay leased: they are attempted again after a restart"
        );
    }
}

/// As many jobs as there are free slots: handed-off ones first, then due ones from the store.
async fn next_jobs(
    service: &Service,
    queue: &LocalQueue,
    pool: &Pool,
    last_saturated_lease: &mut Option<Instant>,
) -> Vec<Job> {
    let free = pool.slots.available_permits();
    if free == 0 {
        return Vec::new();
    }
    let saturated = pool.saturated();
    let webhooks = service.webhooks().current().unwrap_or_default();
    if !saturated.is_empty() && webhooks.webhooks().iter().all(|w| saturated.contains(&w.id)) {
        // Every webhook uses its whole share: nothing could start (a webhook that gets room wakes the workers).
        return Vec::new();
    }
    let now = service.now_ms();
    let mut jobs = queue.take_handed_off(free, &saturated, now);
    let (due_at, notes) = queue.due.snapshot();
    if jobs.len() == free || due_at > now {
        return jobs;
    }
    if !saturated.is_empty() {
        if last_saturated_lease.is_some_and(|at| at.elapsed() < SATURATED_POLL) {
            return jobs;
        }
        *last_saturated_lease = Some(Instant::now());
    }
    let wanted = free - jobs.len();
    let skip: Vec<String> = saturated.iter().map(|id| id.to_string()).collect();
    match queue.lease(now, wanted, skip).await {
        Ok(leased) => {
            queue.backoff.succeeded();
            if leased.len() < wanted {
                // Nothing more is due for the webhooks with room: look again when the next delivery is due, or
                // soon when the saturated webhooks may hide others' (a webhook that gets room notes it at once).
                let next = match saturated.is_empty() {
                    true => queue.store.next_due_ms().await.ok().flatten().unwrap_or(i64::MAX),
                    false => now + SATURATED_POLL.as_millis() as i64,
                };
                queue.due.drained(notes, next);
            }
            jobs.extend(leased);
        }
        Err(error) => queue.backoff.failed("leasing deliveries", &error),
    }
    jobs
}

/// Records an attempt, trying again while the store fails (with the workers' back-off) until the delivery's
/// lease runs out: past it, the delivery is due again and attempted again, at least once, never lost.
async fn settle(service: &Service, queue: &LocalQueue, attempted: Box<service::Attempted>) {
    let give_up_at = Instant::now() + Duration::from_millis(queue.lease_ms.max(0) as u64);
    loop {
        match service.settle(attempted.clone()).await {
            Ok(_) => return queue.backoff.succeeded(),
            Err(error) => queue.backoff.failed("recording an attempt", &error),
        }
        let wait = queue.backoff.wait().max(Duration::from_millis(10));
        if Instant::now() + wait >= give_up_at {
            return tracing::error!("an attempt could not be recorded before its lease ran out: it is made again");
        }
        tokio::time::sleep(wait).await;
    }
}

async fn spawn_attempt(service: &Arc<Service>, queue: &Arc<LocalQueue>, pool: &Arc<Pool>, job: Job) {
    let Ok(slot) = pool.slots.clone().acquire_owned().await else { return };
    let webhook_id = job.delivery.webhook_id.clone();
    pool.started(&webhook_id);
    let tasks = pool.tasks.clone();
    let (service, queue, pool) = (service.clone(), queue.clone(), pool.clone());
    let span = service::span(&job);
    let attempt = async move {
        let step = service.attempt(job).await;
        drop(slot);
        if pool.finished(&webhook_id) {
            queue.due.note(service.now_ms());
        }
        queue.wake.notify_one();
        match step {
            Ok(Step::Attempted(attempted)) => settle(&service, &queue, attempted).await,
            Ok(Step::Duplicate { .. } | Step::Dropped { .. } | Step::Deferred { .. }) => {}
            Err(error) => queue.backoff.failed("admitting a delivery", &error),
        }
    };
    tasks.spawn(attempt.instrument(span));
}
