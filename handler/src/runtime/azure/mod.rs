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
use crate::adapters::sealed::SealedWebhooks;
use crate::adapters::sender::Sender;
use crate::adapters::servicebus::{QueueSender, ServiceBusDeliveries, ServiceBusEvents};
use crate::config::ServeConfig;
use crate::ports::{DeliveryLog, SystemClock};
use crate::service::{Intake, Parts, Service};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::Arc;

/// What the functions' handlers share.
pub struct Azure {
    pub service: Arc<Service>,
    /// The delivery log, which OnIncomingEvent's output binding logs each delivery in.
    pub log: Arc<dyn DeliveryLog>,
}

impl Azure {
    pub fn new(config: &ServeConfig) -> (Arc<Azure>, Sender) {
        let cosmos = Arc::new(CosmosStore::new(config.cosmos.clone()));
        let sender = Sender::new(config.request_timeout, config.allow_private_targets);
        let deliveries = ServiceBusDeliveries {
            log: cosmos.clone(),
            sender: QueueSender::new(&config.service_bus, &config.deliveries_queue),
        };
        let events = ServiceBusEvents(QueueSender::new(&config.service_bus, &config.events_queue));
        let service = Arc::new(Service::new(Parts {
            mode: "azure",
            webhooks: Arc::new(SealedWebhooks::new(cosmos.clone(), config.encryption_key.clone())),
            webhook_cache: Some(config.webhook_cache),
            log: cosmos.clone(),
            rejected: cosmos.clone(),
            queue: Arc::new(deliveries),
            rate_limits: cosmos.clone(),
            intake: Intake::Queue(Arc::new(events)),
            sender: Arc::new(sender.clone()),
            clock: Arc::new(SystemClock),
            schedule: config.retry_schedule.clone(),
            disable_after: config.disable_after,
        }));
        (Arc::new(Azure { service, log: cosmos }), sender)
    }

    /// The functions at `/{FunctionName}`, `GET /` for the host's readiness probe, and the API.
    pub fn router(self: Arc<Self>) -> Router {
        let functions = Router::new()
            .route("/", get(|| async { "ready" }))
            .route("/OnIncomingEvent", post(functions::on_incoming_event))
            .route("/DeliverWebhook", post(functions::deliver_webhook))
            .route("/OnDeliveryDeadLettered", post(functions::on_dead_lettered))
            .with_state(self.clone());
        // On Azure the host checks the function key before a request gets here.
        functions.merge(crate::http::router(self.service.clone(), None))
    }
}

/// Serves the functions on 127.0.0.1:`config.port` until `shutdown` completes.
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
    axum::serve(listener, azure.router()).with_graceful_shutdown(shutdown).await
}
