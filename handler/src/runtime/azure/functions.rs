//! The functions of the app: what `function-app/*/function.json` must say for the handler to understand their
//! invocations (`FUNCTIONS`, which `handler package` checks the app against), and each function's handler,
//! translating an invocation into service calls and the outcome into the invocation's answer.
//!
//! - OnIncomingEvent: a message of the events queue is routed; its delivery jobs go out through the `deliveries`
//!   output binding. An invalid event is recorded as rejected and completed: a redelivery cannot make it valid.
//!   One whose enrichers failed is sent again, scheduled for its next try, and completed.
//! - DeliverWebhook: one attempt of a job; a retry is a job scheduled on the deliveries queue.
//! - OnDeliveryDeadLettered: a job Service Bus gave up itself ends its delivery dead.
//! - Api, AcceptWebhook (the inbound webhooks), Portal: HTTP, forwarded unchanged to the router local mode serves too (`crate::http`).
//!
//! A failure a redelivery may cure (the store or the queue is down) is answered non-2xx: Service Bus then
//! delivers the message again.

use super::invocation::{Invocation, InvocationResponse};
use super::outputs::OutputBinding;
use super::Azure;
use crate::adapters::servicebus::{EVENT_ID_PROPERTY, TRY_PROPERTY};
use crate::service::{self, Accepted, ServiceError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dispatcher_core::dispatch::Source;
use dispatcher_core::model::{Job, Rejected};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tracing::Instrument;

/// One binding of a function, as the handler relies on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The key of this binding in an invocation's `Data` (a trigger) or `Outputs` (an output).
    pub name: &'static str,
    /// The function.json `type`.
    pub kind: &'static str,
    /// The queue, for Service Bus bindings (`%SETTING%` expands an app setting).
    pub queue: Option<&'static str>,
}

/// A function of the app: the host posts its invocations to `/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub trigger: Binding,
    pub outputs: &'static [Binding],
}

const fn service_bus_trigger(queue: &'static str) -> Binding {
    Binding { name: "msg", kind: "serviceBusTrigger", queue: Some(queue) }
}

/// Every function of `function-app/`.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "OnIncomingEvent",
        trigger: service_bus_trigger("%EVENTS_QUEUE%"),
        outputs: &[Binding { name: "deliveries", kind: "serviceBus", queue: Some("%DELIVERIES_QUEUE%") }],
    },
    Function { name: "DeliverWebhook", trigger: service_bus_trigger("%DELIVERIES_QUEUE%"), outputs: &[] },
    Function {
        name: "OnDeliveryDeadLettered",
        trigger: service_bus_trigger("%DELIVERIES_QUEUE%/$deadletterqueue"),
        outputs: &[],
    },
    // Forwarded as the original HTTP request to the same router as local mode (`enableForwardingHttpRequest`).
    Function {
        name: "Api",
        trigger: Binding { name: "req", kind: "httpTrigger", queue: None },
        outputs: &[Binding { name: "res", kind: "http", queue: None }],
    },
    // Providers' webhooks to the sources (`POST /api/v1/in/{sourceId}`), forwarded likewise: a function of its own,
    // anonymous because the handler verifies each request by its source's signature, and counted apart from the
    // API's calls in the host's metrics. The host tries routes in the order of their functions' names
    // (azure-functions-host#9876), so this one's sorts before Api, whose `v1/{*path}` would take it.
    Function {
        name: "AcceptWebhook",
        trigger: Binding { name: "req", kind: "httpTrigger", queue: None },
        outputs: &[Binding { name: "res", kind: "http", queue: None }],
    },
    // The portal's files, forwarded likewise; anonymous, for the page carries no key (its API calls do).
    Function {
        name: "Portal",
        trigger: Binding { name: "req", kind: "httpTrigger", queue: None },
        outputs: &[Binding { name: "res", kind: "http", queue: None }],
    },
];

/// The trigger binding of the Service Bus functions, and OnIncomingEvent's output.
const TRIGGER: &str = "msg";
const OUTPUT: &str = "deliveries";

/// Why an invocation failed in a way that a redelivery may cure: answered non-2xx.
type Failure = (StatusCode, String);

fn unavailable(error: ServiceError) -> Failure {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// What the host gets back: 2xx with the invocation's answer, or non-2xx (the message is delivered again).
fn answer(result: Result<InvocationResponse, Failure>) -> Response {
    match result {
        Ok(response) => Json(response.to_json()).into_response(),
        Err((status, error)) => {
            tracing::error!(%error, "invocation failed; the host will deliver the message again");
            (status, Json(json!({"Outputs": {}, "Logs": [error], "ReturnValue": null}))).into_response()
        }
    }
}

fn parse(body: &[u8]) -> Result<Invocation, Failure> {
    Invocation::parse(body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
}

/// The message's id; without one, a digest of its body, which a redelivery shares too.
fn message_id(invocation: &Invocation, body: &[u8]) -> String {
    invocation.metadata_text("MessageId").filter(|id| !id.is_empty()).unwrap_or_else(|| {
        let digest = Sha256::digest(body);
        format!("sha256-{}", digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
    })
}

/// Records a message that cannot be handled as rejected, and answers 2xx: a redelivery cannot fix it.
async fn refuse(
    azure: &Azure,
    invocation: &Invocation,
    what: String,
    body: &[u8],
) -> Result<InvocationResponse, Failure> {
    let id = invocation.metadata_text("MessageId").filter(|id| !id.is_empty());
    let path = format!("Data.{TRIGGER}");
    let rejected = azure.service.reject_message(id, &path, what, body).await.map_err(unavailable)?;
    Ok(rejected_answer(&rejected))
}

/// The answer to a message recorded as rejected: completed, since a redelivery cannot fix it.
fn rejected_answer(rejected: &Rejected) -> InvocationResponse {
    InvocationResponse::default().log(format!("message {} rejected, not retried: {}", rejected.id, rejected.reason()))
}

/// OnIncomingEvent: routes the event of a message of the events queue.
pub async fn on_incoming_event(State(azure): State<Arc<Azure>>, body: Bytes) -> Response {
    let handled = async {
        let invocation = parse(&body)?;
        let body = match invocation.message_body(TRIGGER) {
            Ok(body) => body,
            Err(error) => return refuse(&azure, &invocation, error.to_string(), b"").await,
        };
        let correlation_id =
            invocation.metadata_text("CorrelationId").or_else(|| invocation.application_property("x-correlation-id"));
        let traceparent =
            invocation.application_property("traceparent").or_else(|| invocation.application_property("Diagnostic-Id"));
        // An event tried again after its enrichers failed says which event and which try it is.
        let attempt = invocation.application_property(TRY_PROPERTY).and_then(|n| n.parse().ok()).filter(|n| *n >= 1);
        let attempt = attempt.unwrap_or(1);
        let id = invocation.application_property(EVENT_ID_PROPERTY).unwrap_or_else(|| message_id(&invocation, &body));
        let source = Source { id, correlation_id, traceparent };
        let outputs = OutputBinding::default();
        match azure.service.accept(&body, &source, attempt, &outputs).await.map_err(unavailable)? {
            Accepted::Routed { event, deliveries } => {
                let line = format!("{event} from message {}: {deliveries} deliveries", source.id);
                Ok(InvocationResponse::default().messages(OUTPUT, outputs.into_messages()).log(line))
            }
            Accepted::Rejected(rejected) => Ok(rejected_answer(&rejected)),
            Accepted::Waiting { reason, at_ms } => Ok(InvocationResponse::default().log(format!(
                "event {} (try {attempt}) waits for its next try at {}: {reason}",
                source.id,
                crate::service::timestamp(at_ms)
            ))),
        }
    };
    answer(handled.await)
}

/// The job in a message of the deliveries queue, or why it is not one.
fn read_job(invocation: &Invocation) -> Result<Job, (String, Vec<u8>)> {
    let body = invocation.message_body(TRIGGER).map_err(|e| (e.to_string(), Vec::new()))?;
    let mut job: Job = serde_json::from_slice(&body).map_err(|e| (format!("not a delivery job: {e}"), body.clone()))?;
    // A message delivered again vouches for nothing: whatever it was made from may have moved on since.
    if invocation.metadata_u64("DeliveryCount").is_some_and(|count| count > 1) {
        job.log_version = None;
    }
    Ok(job)
}

/// DeliverWebhook: one attempt of a job.
pub async fn deliver_webhook(State(azure): State<Arc<Azure>>, body: Bytes) -> Response {
    let handled = async {
        let invocation = parse(&body)?;
        let job = match read_job(&invocation) {
            Ok(job) => job,
            Err((what, body)) => return refuse(&azure, &invocation, what, &body).await,
        };
        let span = service::span(&job);
        let id = job.delivery.id;
        let attempted = async {
            let handled = match azure.service.attempt(job).await?.without_attempt(id) {
                Ok(handled) => handled,
                Err(attempted) => azure.service.settle(attempted).await?,
            };
            Ok::<_, ServiceError>(InvocationResponse::default().log(handled.to_string()))
        };
        attempted.instrument(span).await.map_err(unavailable)
    };
    answer(handled.await)
}

/// OnDeliveryDeadLettered: Service Bus gave a job up itself (its delivery count ran out, or it expired).
pub async fn on_dead_lettered(State(azure): State<Arc<Azure>>, body: Bytes) -> Response {
    let handled = async {
        let invocation = parse(&body)?;
        let job = match read_job(&invocation) {
            Ok(job) => job,
            Err((what, body)) => return refuse(&azure, &invocation, what, &body).await,
        };
        let cause = invocation.application_property("DeadLetterReason");
        let description = invocation.application_property("DeadLetterErrorDescription");
        let handled =
            azure.service.dead_lettered(job, cause.as_deref(), description.as_deref()).await.map_err(unavailable)?;
        Ok(InvocationResponse::default().log(handled.to_string()))
    };
    answer(handled.await)
}
