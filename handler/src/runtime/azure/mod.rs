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
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Invocations being answered, for the shutdown's report.
#[derive(Clone, Default)]
struct InFlight(Arc<AtomicUsize>);

async fn count_in_flight(State(in_flight): State<InFlight>, request: Request, next: Next) -> Response {
    in_flight.0.fetch_add(1, Ordering::SeqCst);
    // Decremented on drop, also when the connection goes away mid-request.
    struct Done(InFlight);
    impl Drop for Done {
        fn drop(&mut self) {
            self.0 .0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _done = Done(in_flight);
    next.run(request).await
}

/// How long invocations under way may take to finish once the host stops the handler: an attempt is bounded
/// by the request timeout, and recording it takes a few store writes.
fn shutdown_grace(config: &ServeConfig) -> Duration {
    config.request_timeout + Duration::from_secs(5)
}

/// Serves the functions on 127.0.0.1:`config.port` until `shutdown` completes, then lets the invocations under
/// way finish (their attempts recorded, their answers sent) within the grace period: an invocation cut short
/// has its message delivered again by the host, which would send its attempt twice.
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
    let in_flight = InFlight::default();
    let router = azure.router().layer(axum::middleware::from_fn_with_state(in_flight.clone(), count_in_flight));
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(true);
    });
    let (grace, counter) = (shutdown_grace(&config), in_flight);
    tokio::select! {
        served = server => {
            tracing::info!("stopped");
            served
        }
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tracing::info!(in_flight = counter.0.load(Ordering::SeqCst), "shutting down: no new invocations; those under way finish first");
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(
                unfinished = counter.0.load(Ordering::SeqCst),
                ?grace,
                "invocations still under way after the grace period: the host delivers their messages again"
            );
            Ok(())
        }
    }
}
