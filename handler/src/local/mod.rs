//! The embedded runtime behind `handler local`: the SQLite store and queue, the delivery workers and the API,
//! in one process. `workers.rs` runs the deliveries.

mod hand_off;
mod workers;

use crate::api::problem::ApiError;
use crate::api::{Backend, InfoView, Store};
use crate::delivery::retry::RetrySchedule;
use crate::delivery::sender::{now_ms, Sender};
use crate::delivery::signing::Secret;
use crate::delivery::{Attempted, Engine};
use crate::dispatch::{dispatch, DeliveryId};
use crate::events::Event;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    DeliveryRecord, Job, NewDelivery, Next, Rejected, RejectedEvents, StoreError, StoredWebhook, Webhooks,
};
use crate::webhooks::config::decode_registration;
use crate::webhooks::{WebhookConfig, WebhookIndex};
use hand_off::HandOff;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};

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
    pub fn new(webhooks: Vec<StoredWebhook>) -> WebhookSet {
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
    /// Deliveries accepted by this process and leased to it at once, for the workers to take from memory.
    handed_off: Mutex<HandOff>,
    /// When the store may next hold a due delivery that no worker has in memory.
    store_due: workers::DueHint,
    /// Rung when deliveries become due sooner than the workers expect.
    wake: Notify,
}

/// What became of a job's attempt, to be recorded.
enum Outcome {
    /// Its webhook was deleted or disabled meanwhile: not attempted.
    Dropped {
        job: Job,
    },
    Attempted {
        job: Job,
        webhook: Arc<StoredWebhook>,
        attempted: Attempted,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot read the webhooks file {path}: {reason}")]
    WebhooksFile { path: String, reason: String },
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
        let sender = Sender::new(config.request_timeout, config.allow_private_targets);
        let engine = Engine { sender, schedule: config.retry_schedule.clone() };
        let app = Arc::new(App {
            config,
            store,
            engine,
            counters: Counters::default(),
            webhooks: RwLock::default(),
            handed_off: Mutex::default(),
            // Whatever a previous run left is due now.
            store_due: workers::DueHint::new(0),
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
        self.enqueue(deliveries).await?;
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Accepted { source_id, deliveries: count })
    }

    /// Stores deliveries durably; when the workers have room, leases them to this process at the same time and
    /// hands them over in memory, which spares the store a lease per delivery.
    async fn enqueue(&self, deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
        let now = now_ms();
        // Deliveries already waiting in the store go first: new ones queue behind them there.
        let backlog = self.store_due.at() <= now;
        let room = self.handed_off.lock().is_ok_and(|h| h.has_room_for(deliveries.len()));
        let lease_until = (room && !backlog).then(|| now + self.lease_ms());
        let jobs = self.store.accept(deliveries, now, lease_until).await?;
        match lease_until {
            Some(_) => {
                if let Ok(mut handed_off) = self.handed_off.lock() {
                    jobs.into_iter().for_each(|job| handed_off.push(job));
                }
            }
            None => self.note_due(now),
        }
        self.wake.notify_one();
        Ok(())
    }

    /// How long a leased delivery belongs to this process: past that, it is due again (its attempt was lost).
    fn lease_ms(&self) -> i64 {
        (self.config.request_timeout + Duration::from_secs(60)).as_millis() as i64
    }

    /// Runs the delivery workers until `stop` turns true, then lets in-flight deliveries finish (up to the grace
    /// period). See `workers.rs`.
    pub async fn run_deliveries(self: Arc<Self>, stop: watch::Receiver<bool>) {
        workers::run(self, stop).await
    }

    /// Notes that the store holds a delivery due at `at_ms` that no worker has in memory.
    fn note_due(&self, at_ms: i64) {
        self.store_due.note(at_ms);
    }

    /// Makes the attempt of a job, or decides that it cannot be made; the outcome is recorded by [`App::settle`].
    async fn attempt(&self, job: Job) -> Outcome {
        let webhook = self.webhooks().by_id.get(&job.delivery.webhook_id).cloned();
        let Some(webhook) = webhook.filter(|w| !w.config.disabled) else {
            return Outcome::Dropped { job };
        };
        let n = job.attempts_made + 1;
        let attempted = self.engine.attempt(&job.delivery, &webhook, n).await;
        Outcome::Attempted { job, webhook, attempted }
    }

    /// Records an outcome, then does what it calls for: disabling a webhook that is gone, a failure callback.
    async fn settle(&self, outcome: Outcome) {
        let (job, webhook, attempted) = match outcome {
            Outcome::Dropped { job } => {
                let reason = "the webhook was deleted or disabled before the delivery could be made".to_owned();
                tracing::warn!(%reason, "delivery dropped");
                if let Err(error) = self.store.release(job.seq, Next::Dead { reason }).await {
                    tracing::error!(%error, "cannot record the dropped delivery");
                }
                self.counters.dead.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Outcome::Attempted { job, webhook, attempted } => (job, webhook, attempted),
        };
        let n = job.attempts_made + 1;
        let status_code = attempted.record.status_code;
        tracing::info!(attempt = n, status = ?status_code, error = attempted.record.error.as_deref().unwrap_or(""), next = ?attempted.next, "attempted");
        if let Err(error) = self.store.record_attempt(job.seq, n, attempted.record, attempted.next.clone()).await {
            // The lease runs out and the delivery is attempted again: at least once, never lost.
            tracing::error!(%error, "cannot record the attempt");
            return;
        }
        match attempted.next {
            Next::Succeeded => self.counters.delivered.fetch_add(1, Ordering::Relaxed),
            Next::RetryAt { at_ms } => {
                self.note_due(at_ms);
                self.counters.retried.fetch_add(1, Ordering::Relaxed)
            }
            Next::Dead { .. } => self.counters.dead.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(reason) = attempted.disable_webhook {
            self.disable(&webhook, reason).await;
        }
        if matches!(attempted.next, Next::Dead { .. }) {
            let callback = self.engine.failure_callback(&job.delivery, &webhook, n, status_code).await;
            if let Some(callback) = callback {
                tracing::info!(status = ?callback.status_code, error = callback.error.as_deref().unwrap_or(""), "failure callback sent");
            }
        }
    }

    async fn disable(&self, webhook: &StoredWebhook, reason: String) {
        let disabled = webhook.disabled(reason, now_ms());
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

/// One delivery of `body` to `webhook` outside routing (a ping), under a fresh source id.
pub fn direct_delivery(webhook: &StoredWebhook, event: &str, body: Vec<u8>) -> NewDelivery {
    let source_id = random_id("evt_").unwrap_or_else(|_| format!("evt_{}", now_ms()));
    NewDelivery {
        id: crate::dispatch::delivery_id(&source_id, &webhook.id, &body),
        webhook_id: webhook.id.clone(),
        event: event.to_owned(),
        body,
        source_id,
        correlation_id: None,
    }
}

#[async_trait::async_trait]
impl Backend for App {
    async fn store(&self) -> Result<&dyn Store, StoreError> {
        Ok(&self.store)
    }

    async fn webhooks_changed(&self) -> Result<(), StoreError> {
        self.reload_webhooks().await
    }

    async fn publish(
        &self,
        event: &Event,
        _body: &[u8],
        source_id: &str,
        correlation_id: Option<String>,
    ) -> Result<Option<usize>, ApiError> {
        Ok(Some(self.accept(event, source_id.to_owned(), correlation_id).await?.deliveries))
    }

    async fn deliver_now(&self, webhook: &StoredWebhook, event: &str, body: Vec<u8>) -> Result<DeliveryId, ApiError> {
        let delivery = direct_delivery(webhook, event, body);
        let id = delivery.id;
        self.enqueue(vec![delivery]).await?;
        Ok(id)
    }

    async fn retry(&self, delivery: &DeliveryRecord) -> Result<bool, ApiError> {
        let now = now_ms();
        let changed = self.store.retry_now(delivery.id, now).await?;
        self.note_due(now);
        self.wake.notify_one();
        Ok(changed)
    }

    async fn reject(&self, rejected: Rejected) -> Result<(), StoreError> {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        self.store.reject(rejected).await
    }

    fn info(&self) -> InfoView {
        InfoView::new("local", self.webhooks().by_id.len(), Some(&self.counters))
    }

    fn api_key(&self) -> Option<&ApiKey> {
        self.config.api_key.as_ref()
    }
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
