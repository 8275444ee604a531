//! `handler serve`: the custom handler the Functions host starts (contract §1): it binds
//! 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT, answers `GET /` at once (the host's readiness probe), and takes
//! the invocations of the functions at `POST /{FunctionName}`. Cosmos DB is connected on first use and again
//! after a failure, so a slow or absent database never delays readiness.

use super::deliver::{deliver_webhook, on_dead_lettered, Delivering, Failure, Handled};
use super::incoming::on_incoming_event;
use super::invocation::Invocation;
use super::jobs::DeliveryJob;
use super::servicebus::{MessageProperties, ServiceBusConnection, ServiceBusQueue};
use crate::api::problem::ApiError;
use crate::api::{Backend, InfoView, Store};
use crate::delivery::retry::RetrySchedule;
use crate::delivery::sender::{now_ms, Sender};
use crate::delivery::Engine;
use crate::dispatch::DeliveryId;
use crate::events::Event;
use crate::local::WebhookSet;
use crate::local::{direct_delivery, ApiKey};
use crate::store::cosmos::{CosmosConfig, CosmosStore};
use crate::store::{DeliveryLog, DeliveryRecord, StoredWebhook};
use crate::store::{StoreError, Webhooks};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything `handler serve` is configured with (app settings, see `config.rs`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub port: u16,
    pub cosmos: CosmosConfig,
    /// How long the webhooks read from Cosmos DB are used before they are read again.
    pub webhook_cache: Duration,
    pub service_bus: ServiceBusConnection,
    pub events_queue: String,
    pub deliveries_queue: String,
    /// Where the Service Bus REST calls go instead of the namespace (a stand-in of Service Bus).
    pub service_bus_rest_url: Option<String>,
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    pub allow_private_targets: bool,
}

/// The queues the handler sends to itself, through the REST API.
pub struct Queues {
    pub events: ServiceBusQueue,
    pub deliveries: ServiceBusQueue,
}

pub struct Functions {
    config: ServeConfig,
    engine: Engine,
    store: tokio::sync::OnceCell<CosmosStore>,
    queues: tokio::sync::OnceCell<Queues>,
    webhooks: Mutex<Option<(Instant, Arc<WebhookSet>)>>,
}

impl Functions {
    pub fn new(config: ServeConfig) -> Arc<Functions> {
        let sender = Sender::new(config.request_timeout, config.allow_private_targets);
        let engine = Engine { sender, schedule: config.retry_schedule.clone() };
        Arc::new(Functions {
            config,
            engine,
            store: tokio::sync::OnceCell::new(),
            queues: tokio::sync::OnceCell::new(),
            webhooks: Mutex::default(),
        })
    }

    /// Builds the delivery HTTP client in the background, after the handler answers `GET /` (see
    /// [`Sender::warm_up`]).
    pub fn warm_up(&self) {
        self.engine.sender.warm_up();
    }

    async fn store(&self) -> Result<&CosmosStore, StoreError> {
        self.store.get_or_try_init(|| CosmosStore::connect(&self.config.cosmos)).await
    }

    async fn queues(&self) -> Result<&Queues, String> {
        self.queues
            .get_or_try_init(|| async {
                let config = self.config.clone();
                tokio::task::spawn_blocking(move || connect_queues(&config)).await.map_err(|e| e.to_string())?
            })
            .await
    }

    /// The webhooks, read again once the cache is older than `webhook_cache`.
    async fn webhooks(&self) -> Result<Arc<WebhookSet>, StoreError> {
        let cached = self.webhooks.lock().ok().and_then(|c| c.clone());
        if let Some((_, set)) = cached.filter(|(at, _)| at.elapsed() < self.config.webhook_cache) {
            return Ok(set);
        }
        let set = Arc::new(WebhookSet::new(self.store().await?.list_webhooks().await?));
        if let Ok(mut cache) = self.webhooks.lock() {
            *cache = Some((Instant::now(), set.clone()));
        }
        Ok(set)
    }

    /// Forgets the cached webhooks after a change made by this instance.
    pub fn forget_webhooks(&self) {
        if let Ok(mut cache) = self.webhooks.lock() {
            *cache = None;
        }
    }

    /// The functions at `/{FunctionName}`, and the `Api` function's requests, which the host forwards unchanged
    /// (`enableForwardingHttpRequest`) to the same router as local mode.
    pub fn router(self: Arc<Self>) -> Router {
        let functions = Router::new()
            .route("/", get(|| async { "ready" }))
            .route("/OnIncomingEvent", post(incoming))
            .route("/DeliverWebhook", post(|f: State<Arc<Functions>>, b: Bytes| delivering(f, b, Function::Deliver)))
            .route(
                "/OnDeliveryDeadLettered",
                post(|f: State<Arc<Functions>>, b: Bytes| delivering(f, b, Function::DeadLettered)),
            )
            .with_state(self.clone());
        functions.merge(crate::api::router(self))
    }
}

fn connect_queues(config: &ServeConfig) -> Result<Queues, String> {
    let client = crate::http_client::build(crate::http_client::builder().timeout(Duration::from_secs(30)))
        .map_err(|e| format!("the Service Bus client: {e}"))?;
    let rest_url = config.service_bus_rest_url.as_deref().map(|url| ("DISPATCHER_SERVICEBUS_REST_URL", url));
    let queue = |name: &str| ServiceBusQueue::connect(&config.service_bus, name, client.clone(), rest_url);
    Ok(Queues { events: queue(&config.events_queue)?, deliveries: queue(&config.deliveries_queue)? })
}

/// What the host gets back: 2xx with the invocation's answer, or non-2xx (the message is retried).
fn answer(result: Result<serde_json::Value, (StatusCode, String)>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err((status, error)) => {
            tracing::error!(%error, "invocation failed; the host will retry the message");
            (status, Json(json!({"Outputs": {}, "Logs": [error], "ReturnValue": null}))).into_response()
        }
    }
}

fn unavailable(error: impl ToString) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

fn parse(body: &[u8]) -> Result<Invocation, (StatusCode, String)> {
    Invocation::parse(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

async fn incoming(State(functions): State<Arc<Functions>>, body: Bytes) -> Response {
    let result = async {
        let invocation = parse(&body)?;
        let webhooks = functions.webhooks().await.map_err(unavailable)?;
        let store = functions.store().await.map_err(unavailable)?;
        let response = on_incoming_event(&invocation, &webhooks, store, now_ms()).await.map_err(unavailable)?;
        Ok(response.to_json())
    }
    .await;
    answer(result)
}

enum Function {
    Deliver,
    DeadLettered,
}

async fn delivering(State(functions): State<Arc<Functions>>, body: Bytes, function: Function) -> Response {
    let result = async {
        let invocation = parse(&body)?;
        let webhooks = functions.webhooks().await.map_err(unavailable)?;
        let store = functions.store().await.map_err(unavailable)?;
        let retries = &functions.queues().await.map_err(unavailable)?.deliveries;
        let ctx = Delivering { engine: &functions.engine, webhooks: &webhooks, store, retries, now_ms: now_ms() };
        let handled: Result<Handled, Failure> = match function {
            Function::Deliver => deliver_webhook(&invocation, &ctx).await,
            Function::DeadLettered => on_dead_lettered(&invocation, &ctx).await,
        };
        let handled = handled.map_err(unavailable)?;
        if handled.webhooks_changed {
            functions.forget_webhooks();
        }
        Ok(handled.response.to_json())
    }
    .await;
    answer(result)
}

fn queue_unavailable(error: String) -> ApiError {
    tracing::error!(%error, "Service Bus send failed");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue-unavailable", error)
}

impl Functions {
    async fn send_job(&self, job: &DeliveryJob, message_id: String) -> Result<(), ApiError> {
        let queues = self.queues().await.map_err(queue_unavailable)?;
        queues.deliveries.send_job(job, message_id, None).await.map_err(queue_unavailable)
    }
}

/// The API on Azure: the store is Cosmos DB; published events and re-sent deliveries go to the queues, where
/// OnIncomingEvent and DeliverWebhook take them.
#[async_trait::async_trait]
impl Backend for Functions {
    async fn store(&self) -> Result<&dyn Store, StoreError> {
        Ok(Functions::store(self).await?)
    }

    async fn webhooks_changed(&self) -> Result<(), StoreError> {
        self.forget_webhooks();
        Ok(())
    }

    async fn publish(
        &self,
        _event: &Event,
        body: &[u8],
        source_id: &str,
        correlation_id: Option<String>,
    ) -> Result<Option<usize>, ApiError> {
        let queues = self.queues().await.map_err(queue_unavailable)?;
        // The MessageId is the source of the delivery ids, as for events sent to the queue directly.
        let properties =
            MessageProperties { message_id: Some(source_id.to_owned()), correlation_id, scheduled_at_ms: None };
        queues.events.send(&String::from_utf8_lossy(body), &properties).await.map_err(queue_unavailable)?;
        Ok(None)
    }

    async fn deliver_now(&self, webhook: &StoredWebhook, event: &str, body: Vec<u8>) -> Result<DeliveryId, ApiError> {
        let delivery = direct_delivery(webhook, event, body);
        Functions::store(self).await?.log_delivery(&delivery, now_ms()).await?;
        self.send_job(&DeliveryJob::new(&delivery), format!("{}-0", delivery.id)).await?;
        Ok(delivery.id)
    }

    async fn retry(&self, delivery: &DeliveryRecord) -> Result<bool, ApiError> {
        let job = DeliveryJob::from_record(delivery);
        // Its own message id: a manual retry is never a duplicate of the scheduled one.
        self.send_job(&job, format!("{}-{}-retry-{}", delivery.id, job.attempts_made, now_ms())).await?;
        Ok(true)
    }

    fn info(&self) -> InfoView {
        let cached = self.webhooks.lock().ok().and_then(|c| c.as_ref().map(|(_, set)| set.by_id.len()));
        InfoView::new("azure", cached.unwrap_or(0), None)
    }

    fn api_key(&self) -> Option<&ApiKey> {
        None
    }
}
