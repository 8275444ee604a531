//! `handler local`: the whole dispatcher in one process, on one SQLite file: the HTTP API, and delivery workers
//! taking jobs from the local queue (`queue.rs`, with the in-memory hand-off of `hand_off.rs`) and attempting
//! them through the service (`workers.rs`), with the webhooks' rate limits in memory (`rate_limits.rs`), and
//! the events whose enrichers failed routed again when their next try comes (`waiting.rs`). This file wires
//! the adapters to the service, starts the listener
//! and the workers, and stops them on a signal: no new requests, then the deliveries in flight and a pruning
//! pass under way finish (up to `--shutdown-grace`) before the process exits.

mod backoff;
mod hand_off;
mod queue;
mod rate_limits;
mod waiting;
mod workers;

pub use queue::LocalQueue;
pub use rate_limits::MemoryRateLimits;
pub use workers::Workers;

use crate::adapters::sealed::{SealedSources, SealedWebhooks};
use crate::adapters::sender::Sender;
use crate::adapters::sqlite::SqliteStore;
use crate::config::LocalConfig;
use crate::ports::{Clock, StoreError, SystemClock};
use crate::service::{ImportError, Intake, Parts, Service, ServiceError};
use dispatcher_core::inbound::DEDUPLICATION_WINDOW;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("cannot read the webhooks file {path}: {reason}")]
    WebhooksFile { path: String, reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: std::net::SocketAddr, reason: String },
    #[error("serving the API: {0}")]
    Serve(String),
}

/// Runs the dispatcher until `shutdown` completes. Prints one line when it is ready (the address, the data file
/// and how many webhooks it holds).
pub async fn run(config: LocalConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Past the lease, a delivery whose attempt never reported back is due again.
    let lease_ms = (config.delivery.request_timeout + Duration::from_secs(60)).as_millis() as i64;
    let queue = Arc::new(LocalQueue::new(SqliteStore::open(&config.data_dir, clock.now_ms())?, lease_ms));
    let store = queue.store().clone();
    let sender = Arc::new(
        Sender::new(config.delivery.request_timeout, config.delivery.allow_private_targets)
            .allowing(config.delivery.allowed_networks.clone()),
    );
    let waiting = Arc::new(waiting::WaitingEvents::new(store.clone()));
    let service = Arc::new(Service::new(Parts {
        mode: "local",
        webhooks: Arc::new(SealedWebhooks::new(store.clone(), config.delivery.encryption_key.clone())),
        tenants: store.clone(),
        sources: Arc::new(SealedSources::new(store.clone(), config.delivery.encryption_key.clone())),
        webhook_cache: None,
        log: store.clone(),
        rejected: store.clone(),
        queue: queue.clone(),
        rate_limits: Arc::new(MemoryRateLimits::default()),
        intake: Intake::Route,
        event_retries: waiting.clone(),
        sender: sender.clone(),
        clock,
        schedule: config.delivery.retry_schedule.clone(),
        disable_after: config.delivery.disable_after,
        operator_key: config.api_key.is_some(),
    }));
    if let Some(path) = &config.webhooks_file {
        import(&service, path).await?;
    }
    let webhooks = service.webhooks().refresh().await?.len();
    let address = std::net::SocketAddr::new(config.bind, config.port);
    let listen_error = |e: std::io::Error| StartError::Listen { address, reason: e.to_string() };
    let listener = tokio::net::TcpListener::bind(address).await.map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    println!(
        "dispatcher ready: API http://{address}/api/v1, portal http://{address}/portal/, data {}, {webhooks} webhooks",
        store.path().display()
    );
    sender.warm_up();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let settings = Workers { concurrency: config.concurrency, shutdown_grace: config.delivery.shutdown_grace };
    // Everything started here is awaited before `run` returns: the runtime is dropped after it, and would
    // cancel a task still running mid-attempt or mid-write.
    let background = tokio_util::task::TaskTracker::new();
    background.spawn(waiting::run(service.clone(), waiting, queue.clone(), stopped.clone()));
    // The workers bound their own wait by the grace period and then count what they leave: not cut off from here.
    let deliveries = tokio::spawn(workers::run(service.clone(), queue, settings, stopped.clone()));
    let retention = Duration::from_secs(u64::from(config.delivery.retention_days) * 86_400);
    let mut stopping = stopped.clone();
    background.spawn(prune(store.clone(), retention, stopped));
    background.close();
    // A request runs to its end even when its client goes away (`run_to_completion`), and is waited for.
    let requests = tokio_util::task::TaskTracker::new();
    let router = crate::http::router(service, config.api_key.clone())
        .layer(axum::middleware::from_fn_with_state(requests.clone(), crate::http::run_to_completion));
    let stop_on_signal = stop.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new requests; the deliveries in flight finish first");
        let _ = stop_on_signal.send(true);
    });
    // Requests under way get the grace period too: a stuck client does not hold the process.
    let grace = config.delivery.shutdown_grace;
    let served = tokio::select! {
        served = server => served.map_err(|e| StartError::Serve(e.to_string())),
        _ = async { let _ = stopping.wait_for(|s| *s).await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "requests still under way after the grace period are cut off");
            Ok(())
        }
    };
    // Also when the server failed rather than stopped.
    let _ = stop.send(true);
    requests.close();
    if tokio::time::timeout(grace, requests.wait()).await.is_err() {
        tracing::warn!(unfinished = requests.len(), "requests still under way are cut off");
    }
    // A pruning pass ends at its next batch; a waiting event's try may wait on its enrichers, so that wait is
    // bounded too. A try cut off is due again at the next start, its deliveries under the same ids.
    let others = tokio::time::timeout(grace, background.wait());
    // Past their own bound, the workers could only be stuck in a write that never returns (a hung disk).
    let deliveries = tokio::time::timeout(grace + WORKERS_MARGIN, deliveries);
    let (delivered, others) = tokio::join!(deliveries, others);
    match delivered {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the delivery workers ended abnormally"),
        Err(_) => tracing::error!("the delivery workers did not stop within the grace period: cut off"),
    }
    if others.is_err() {
        tracing::warn!("background work still under way after the grace period is cut off");
    }
    tracing::info!("stopped");
    served
}

/// What the delivery workers have, past the grace period that bounds their own wait, to count what they leave.
const WORKERS_MARGIN: Duration = Duration::from_secs(2);

/// How often the log is pruned, the first time shortly after the start.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_FIRST: Duration = Duration::from_secs(1);

/// Deletes what is older than `retention`, now and then, in the background (`adapters/sqlite/retention.rs`),
/// until `stop` turns true. A pass under way when it does ends at the end of its current batch: each batch is
/// one transaction, and what is left goes at the next start.
async fn prune(store: Arc<SqliteStore>, retention: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + PRUNE_FIRST, PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let cutoff = SystemClock.now_ms() - retention.as_millis() as i64;
        tracing::debug!("pruning the log");
        let stopped = || *stop.borrow();
        match store.prune(cutoff, crate::adapters::sqlite::PRUNE_BATCH, &stopped).await {
            Ok(pruned) if pruned.deliveries + pruned.rejected_events > 0 => {
                tracing::info!(deliveries = pruned.deliveries, rejected_events = pruned.rejected_events, "pruned")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pruning the log failed; the next pass tries again"),
        }
        let window = SystemClock.now_ms() - DEDUPLICATION_WINDOW.as_millis() as i64;
        if stopped() {
            continue;
        }
        if let Err(error) = store.prune_receipts(window, crate::adapters::sqlite::PRUNE_BATCH, &stopped).await {
            tracing::warn!(%error, "pruning the inbound receipts failed; the next pass tries again");
        }
    }
}

/// Upserts the webhooks of the file given at start.
async fn import(service: &Service, path: &std::path::Path) -> Result<(), StartError> {
    let file_error = |reason: String| StartError::WebhooksFile { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let entries: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| file_error(format!("not a JSON array: {e}")))?;
    match service.import_webhooks(&entries).await {
        Ok(_) => Ok(()),
        Err(ImportError::Service(error)) => Err(error.into()),
        Err(error) => Err(file_error(error.to_string())),
    }
}
