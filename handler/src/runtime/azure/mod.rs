//! `handler serve`: the Azure Functions custom handler. The host starts it with `FUNCTIONS_CUSTOMHANDLER_PORT`,
//! polls `GET /` until it answers, posts each invocation of a function to `/{FunctionName}` (`invocation.rs`,
//! `functions.rs`), and forwards the `Api` function's HTTP requests unchanged to the same router as local mode
//! (`crate::http`). This file wires the Azure adapters to the service: Cosmos DB for the webhooks and the logs,
//! Service Bus for the queues, both connected on first use so that nothing delays readiness.
//! `package.rs` assembles the app for `func azure functionapp publish`, `glibc.rs` checks its binary would start. The contract: docs/azure-functions.md.

pub mod functions;
pub mod glibc;
pub mod invocation;
mod outputs;
pub mod package;

use crate::adapters::cosmos::CosmosStore;
use crate::adapters::sealed::{SealedSources, SealedWebhooks};
use crate::adapters::sender::Sender;
use crate::adapters::servicebus::{QueueSender, ServiceBusDeliveries, ServiceBusEvents};
use crate::config::ServeConfig;
use crate::http::ApiKey;
use crate::ports::{DeliveryLog, SystemClock};
use crate::service::{Intake, Parts, Service};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tokio_util::task::TaskTracker;

/// What the functions' handlers share.
pub struct Azure {
    pub service: Arc<Service>,
    /// The delivery log, which OnIncomingEvent's output binding logs each delivery in.
    pub log: Arc<dyn DeliveryLog>,
    /// The operator's key, which the API checks (the Api function is anonymous).
    pub api_key: ApiKey,
}

impl Azure {
    pub fn new(config: &ServeConfig) -> (Arc<Azure>, Sender) {
        let cosmos = Arc::new(CosmosStore::new(config.cosmos.clone()));
        let sender = Sender::new(config.delivery.request_timeout, config.delivery.allow_private_targets)
            .allowing(config.delivery.allowed_networks.clone());
        let deliveries = ServiceBusDeliveries(QueueSender::new(&config.service_bus, &config.deliveries_queue));
        let events = Arc::new(ServiceBusEvents(QueueSender::new(&config.service_bus, &config.events_queue)));
        let service = Arc::new(Service::new(Parts {
            mode: "azure",
            webhooks: Arc::new(SealedWebhooks::new(cosmos.clone(), config.delivery.encryption_key.clone())),
            tenants: cosmos.clone(),
            sources: Arc::new(SealedSources::new(cosmos.clone(), config.delivery.encryption_key.clone())),
            webhook_cache: Some(config.webhook_cache),
            log: cosmos.clone(),
            rejected: cosmos.clone(),
            queue: Arc::new(deliveries),
            rate_limits: cosmos.clone(),
            intake: Intake::Queue(events.clone()),
            event_retries: events,
            sender: Arc::new(sender.clone()),
            clock: Arc::new(SystemClock),
            schedule: config.delivery.retry_schedule.clone(),
            disable_after: config.delivery.disable_after,
            operator_key: true,
        }));
        (Arc::new(Azure { service, log: cosmos, api_key: config.api_key.clone() }), sender)
    }

    /// The functions at `/{FunctionName}`, `GET /` for the host's readiness probe, and the API. Each invocation
    /// and each API request runs in a task of `invocations`, to its end (see `run_to_completion`): a cascade
    /// delete or a token write is never cut off half-way by a client leaving or by shutdown.
    pub fn router(self: Arc<Self>, invocations: TaskTracker) -> Router {
        let functions = Router::new()
            .route("/", get(|| async { "ready" }))
            .route("/OnIncomingEvent", post(functions::on_incoming_event))
            .route("/DeliverWebhook", post(functions::deliver_webhook))
            .route("/OnDeliveryDeadLettered", post(functions::on_dead_lettered))
            .with_state(self.clone());
        // The API function is anonymous to the host: the handler checks the operator key or a tenant's token.
        functions
            .merge(crate::http::router(self.service.clone(), Some(self.api_key.clone())))
            .layer(axum::middleware::from_fn_with_state(invocations, crate::http::run_to_completion))
    }
}

/// Serves the functions on 127.0.0.1:`config.port` until `shutdown` completes, then lets the invocations under
/// way finish (their attempts recorded, their answers sent) within `--shutdown-grace`.
pub async fn serve(config: ServeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], config.port));
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "custom handler ready");
    let (azure, sender) = Azure::new(&config);
    // The HTTP client reads the platform's CA certificates: after readiness, in the background.
    sender.warm_up();
    // Likewise, a DISPATCHER_ENCRYPTION_KEY that does not open the stored secrets is said at start, not at the
    // first delivery (every request that needs a webhook fails with the same message until it is fixed).
    let service = azure.service.clone();
    tokio::spawn(async move {
        if let Err(error) = service.webhooks().refresh().await {
            tracing::error!(%error, "the webhooks cannot be read");
        }
    });
    let tasks = TaskTracker::new();
    let router = azure.router(tasks.clone());
    let grace = config.delivery.shutdown_grace;
    // When the grace period ends, from the moment the signal came.
    let (stopping, stopped) = tokio::sync::watch::channel(None);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(Some(tokio::time::Instant::now() + grace));
    });
    let mut until_stopped = stopped.clone();
    let deadline = async move {
        let Ok(until) = until_stopped.wait_for(Option::is_some).await.map(|until| *until) else { return };
        tracing::info!("shutting down: no new invocations; those under way finish first");
        tokio::time::sleep_until(until.unwrap_or_else(tokio::time::Instant::now)).await;
    };
    let served = tokio::select! {
        served = server => served,
        () = deadline => Ok(()),
    };
    // A request whose connection closed early leaves its task running: it is awaited too.
    tasks.close();
    let until = stopped.borrow().unwrap_or_else(tokio::time::Instant::now);
    if tokio::time::timeout_at(until, tasks.wait()).await.is_err() {
        tracing::warn!(
            unfinished = tasks.len(),
            ?grace,
            "invocations still under way after the grace period: the host delivers their messages again"
        );
    }
    tracing::info!("stopped");
    served
}
