//! The embedded runtime behind `handler local`: the SQLite store and queue, the delivery workers and the API,
//! in one process.

use crate::delivery::retry::RetrySchedule;
use crate::delivery::sender::{now_ms, Sender};
use crate::delivery::signing::Secret;
use crate::delivery::Engine;
use crate::dispatch::{dispatch, DeliveryId};
use crate::events::Event;
use crate::store::sqlite::SqliteStore;
use crate::store::{Job, NewDelivery, Next, StoreError, StoredWebhook};
use crate::webhooks::config::decode_registration;
use crate::webhooks::{WebhookConfig, WebhookIndex};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

/// Everything `handler local` is configured with (flags or environment variables, see `main.rs`).
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub bind: std::net::IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub webhooks_file: Option<PathBuf>,
    pub concurrency: usize,
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    /// Never printed: see the `Debug` of [`ApiKey`].
    pub api_key: Option<ApiKey>,
    pub allow_private_targets: bool,
    pub shutdown_grace: Duration,
}

/// The key the API asks for in `x-functions-key`. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Counters of what the dispatcher did since it started.
#[derive(Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

/// The webhooks as routing sees them, with what sending needs, replaced whole on every change.
#[derive(Default)]
pub struct WebhookSet {
    pub index: WebhookIndex,
    pub by_id: HashMap<Arc<str>, Arc<StoredWebhook>>,
}

impl WebhookSet {
    fn new(webhooks: Vec<StoredWebhook>) -> WebhookSet {
        let index = WebhookIndex::new(webhooks.iter().map(StoredWebhook::routing).collect());
        let by_id = webhooks.into_iter().map(|w| (w.id.clone(), Arc::new(w))).collect();
        WebhookSet { index, by_id }
    }
}

/// The state shared by the API and the delivery workers.
pub struct App {
    pub config: LocalConfig,
    pub store: SqliteStore,
    pub engine: Engine,
    pub counters: Counters,
    webhooks: RwLock<Arc<WebhookSet>>,
    /// Rung when deliveries become due sooner than the workers expect.
    wake: Notify,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot read the webhooks file {path}: {reason}")]
    WebhooksFile { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: SocketAddr, reason: String },
    #[error("cannot generate a secret: {0}")]
    Random(String),
}

/// What accepting an event produced.
pub struct Accepted {
    pub source_id: String,
    pub deliveries: usize,
}

impl App {
    pub async fn open(config: LocalConfig) -> Result<Arc<App>, StartError> {
        let store = SqliteStore::open(&config.data_dir, now_ms())?;
        let sender = Sender::new(config.request_timeout, config.allow_private_targets)
            .map_err(|e| StartError::Client(e.to_string()))?;
        let engine = Engine { sender, schedule: config.retry_schedule.clone() };
        let app = Arc::new(App {
            config,
            store,
            engine,
            counters: Counters::default(),
            webhooks: RwLock::default(),
            wake: Notify::new(),
        });
        if let Some(path) = app.config.webhooks_file.clone() {
            app.import_webhooks(&path).await?;
        }
        app.reload_webhooks().await?;
        Ok(app)
    }

    pub fn webhooks(&self) -> Arc<WebhookSet> {
        self.webhooks.read().map(|set| set.clone()).unwrap_or_default()
    }

    /// Reads the webhooks from the store again; called after every change.
    pub async fn reload_webhooks(&self) -> Result<(), StoreError> {
        let set = Arc::new(WebhookSet::new(self.store.list_webhooks().await?));
        if let Ok(mut current) = self.webhooks.write() {
            *current = set;
        }
        Ok(())
    }

    /// Upserts the webhooks of a file in the original configuration shape (a JSON array). A webhook without an
    /// `id` gets one derived from its URL and attributes, so importing the same file twice changes nothing.
    async fn import_webhooks(&self, path: &std::path::Path) -> Result<(), StartError> {
        let file_error = |reason: String| StartError::WebhooksFile { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let entries: Vec<serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| file_error(format!("not a JSON array: {e}")))?;
        let mut problems = Vec::new();
        let mut decoded = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match decode_registration(entry) {
                Ok((id, config)) => decoded.push((id.unwrap_or_else(|| derived_id(&config)), config)),
                Err(report) => problems.push(format!("[{i}]: {report}")),
            }
        }
        if !problems.is_empty() {
            return Err(file_error(problems.join("; ")));
        }
        for (id, config) in decoded {
            let existing = self.store.get_webhook(&id).await?;
            let webhook = match existing {
                Some(existing) if existing.config == config => continue,
                Some(existing) => StoredWebhook { config, updated_at_ms: now_ms(), ..existing },
                None => new_webhook(id.into(), config).map_err(|e| StartError::Random(e.to_string()))?,
            };
            self.store.put_webhook(&webhook).await?;
        }
        Ok(())
    }

    /// Validates, routes and durably stores an event's deliveries. Returns once they are stored.
    pub async fn accept(
        &self,
        event: &Event,
        source_id: String,
        correlation_id: Option<String>,
    ) -> Result<Accepted, StoreError> {
        let set = self.webhooks();
        let deliveries: Vec<NewDelivery> = dispatch(&source_id, event, &set.index)
            .into_iter()
            .map(|d| NewDelivery {
                id: d.id,
                webhook_id: d.webhook_id,
                event: d.event.to_owned(),
                body: d.body,
                source_id: source_id.clone(),
                correlation_id: correlation_id.clone(),
            })
            .collect();
        let count = deliveries.len();
        self.store.accept(deliveries, now_ms()).await?;
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
        Ok(Accepted { source_id, deliveries: count })
    }

    /// Queues one delivery of `body` to one webhook, outside routing (a ping from the API).
    pub async fn deliver_directly(
        &self,
        webhook: &StoredWebhook,
        event: &str,
        body: Vec<u8>,
    ) -> Result<DeliveryId, StoreError> {
        let source_id = random_id("evt_").unwrap_or_else(|_| format!("evt_{}", now_ms()));
        let id = crate::dispatch::delivery_id(&source_id, &webhook.id, &body);
        let delivery = NewDelivery {
            id,
            webhook_id: webhook.id.clone(),
            event: event.to_owned(),
            body,
            source_id,
            correlation_id: None,
        };
        self.store.accept(vec![delivery], now_ms()).await?;
        self.wake.notify_one();
        Ok(id)
    }

    pub async fn retry_now(&self, id: DeliveryId) -> Result<bool, StoreError> {
        let changed = self.store.retry_now(id, now_ms()).await?;
        self.wake.notify_one();
        Ok(changed)
    }

    /// Runs the delivery workers until `stop` turns true, then lets in-flight deliveries finish (up to the grace
    /// period).
    pub async fn run_deliveries(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let concurrency = self.config.concurrency.max(1);
        // One slow or failing webhook may hold at most three quarters of the slots: the rest stay for the others.
        let per_webhook = (concurrency * 3 / 4).max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        let in_flight: Arc<Mutex<HashMap<Arc<str>, usize>>> = Arc::default();
        let lease_ms = (self.config.request_timeout + Duration::from_secs(60)).as_millis() as i64;
        while !*stop.borrow() {
            let free = slots.available_permits();
            let jobs = if free == 0 {
                Vec::new()
            } else {
                let skip: Vec<String> = in_flight
                    .lock()
                    .map(|m| m.iter().filter(|(_, n)| **n >= per_webhook).map(|(id, _)| id.to_string()).collect())
                    .unwrap_or_default();
                match self.store.lease(now_ms(), free, lease_ms, skip).await {
                    Ok(jobs) => jobs,
                    Err(error) => {
                        tracing::error!(%error, "cannot lease deliveries");
                        Vec::new()
                    }
                }
            };
            if jobs.is_empty() {
                let wait = match self.store.next_due_ms().await {
                    Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(1, 1000) as u64),
                    _ => Duration::from_secs(1),
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for job in jobs {
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                let webhook_id = job.delivery.webhook_id.clone();
                if let Ok(mut m) = in_flight.lock() {
                    *m.entry(webhook_id.clone()).or_default() += 1;
                }
                let (app, in_flight) = (self.clone(), in_flight.clone());
                tokio::spawn(async move {
                    app.process(job).await;
                    if let Ok(mut m) = in_flight.lock() {
                        if let Some(n) = m.get_mut(&webhook_id) {
                            *n -= 1;
                            if *n == 0 {
                                m.remove(&webhook_id);
                            }
                        }
                    }
                    drop(slot);
                    app.wake.notify_one();
                });
            }
        }
        // Shutting down: wait for the attempts under way; whatever is left is due again at the next start.
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(self.config.shutdown_grace, slots.acquire_many(all)).await;
    }

    async fn process(&self, job: Job) {
        let Job { delivery, attempts_made } = job;
        let span = tracing::info_span!("delivery", delivery_id = %delivery.id, webhook_id = %delivery.webhook_id, correlation_id = delivery.correlation_id.as_deref().unwrap_or(""));
        let _entered = span.enter();
        let webhook = self.webhooks().by_id.get(&delivery.webhook_id).cloned();
        let Some(webhook) = webhook.filter(|w| !w.config.disabled) else {
            let reason = "the webhook was deleted or disabled before the delivery could be made".to_owned();
            tracing::warn!(%reason, "delivery dropped");
            if let Err(error) = self.store.release(delivery.id, Next::Dead { reason }).await {
                tracing::error!(%error, "cannot record the dropped delivery");
            }
            self.counters.dead.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let n = attempts_made + 1;
        let attempted = self.engine.attempt(&delivery, &webhook, n).await;
        let status_code = attempted.record.status_code;
        tracing::info!(attempt = n, status = ?status_code, error = attempted.record.error.as_deref().unwrap_or(""), next = ?attempted.next, "attempted");
        if let Err(error) = self.store.record_attempt(delivery.id, n, attempted.record, attempted.next.clone()).await {
            // The lease runs out and the delivery is attempted again: at least once, never lost.
            tracing::error!(%error, "cannot record the attempt");
            return;
        }
        match attempted.next {
            Next::Succeeded => self.counters.delivered.fetch_add(1, Ordering::Relaxed),
            Next::RetryAt { .. } => self.counters.retried.fetch_add(1, Ordering::Relaxed),
            Next::Dead { .. } => self.counters.dead.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(reason) = attempted.disable_webhook {
            self.disable(&webhook, reason).await;
        }
        if matches!(attempted.next, Next::Dead { .. }) {
            if let Some(callback) = self.engine.failure_callback(&delivery, &webhook, n, status_code).await {
                tracing::info!(status = ?callback.status_code, error = callback.error.as_deref().unwrap_or(""), "failure callback sent");
            }
        }
    }

    async fn disable(&self, webhook: &StoredWebhook, reason: String) {
        let mut disabled = webhook.clone();
        disabled.config.disabled = true;
        disabled.disabled_reason = Some(reason);
        disabled.updated_at_ms = now_ms();
        tracing::warn!(webhook_id = %webhook.id, "webhook disabled after 410 Gone");
        if let Err(error) = self.store.put_webhook(&disabled).await {
            tracing::error!(%error, "cannot disable the webhook");
        }
        if let Err(error) = self.reload_webhooks().await {
            tracing::error!(%error, "cannot reload the webhooks");
        }
    }
}

/// A new webhook with a fresh signing secret.
pub fn new_webhook(id: Arc<str>, config: WebhookConfig) -> Result<StoredWebhook, getrandom::Error> {
    let now = now_ms();
    Ok(StoredWebhook {
        id,
        config,
        secret: Secret::generate()?,
        previous_secret: None,
        created_at_ms: now,
        updated_at_ms: now,
        disabled_reason: None,
    })
}

/// `prefix` + 32 random hex digits.
pub fn random_id(prefix: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().fold(prefix.to_owned(), |mut id, b| {
        id.push_str(&format!("{b:02x}"));
        id
    }))
}

/// The id of a webhook imported without one: `wh_` + a hash of its URL and attributes.
fn derived_id(config: &WebhookConfig) -> String {
    use sha2::{Digest, Sha256};
    let identity = serde_json::json!([config.url, config.attributes]).to_string();
    let digest = Sha256::digest(identity.as_bytes());
    digest[..10].iter().fold("wh_".to_owned(), |mut id, b| {
        id.push_str(&format!("{b:02x}"));
        id
    })
}
