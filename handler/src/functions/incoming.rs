//! OnIncomingEvent: a message of the events queue in, the delivery jobs out (the `deliveries` output binding).
//! Delivery ids derive from the message's `MessageId`, so a redelivered message yields the same jobs, which
//! Service Bus duplicate detection (and every receiver, by `webhook-id`) can drop. An invalid event is recorded
//! as rejected and answered 2xx: retrying it cannot make it valid.

use super::invocation::{Invocation, InvocationResponse};
use super::jobs::DeliveryJob;
use crate::dispatch::dispatch;
use crate::events::decode;
use crate::local::WebhookSet;
use crate::store::{DeliveryLog, NewDelivery, Rejected, RejectedEvents, StoreError, REJECTED_BODY_KEPT};
use crate::validation::Problem;
use sha2::{Digest, Sha256};

/// The trigger and output bindings (see `functions::FUNCTIONS`).
pub const TRIGGER: &str = "msg";
pub const OUTPUT: &str = "deliveries";

/// Handles one invocation. `Err` only for what a retry may cure (the store is unreachable): answer non-2xx.
pub async fn on_incoming_event(
    invocation: &Invocation,
    webhooks: &WebhookSet,
    store: &(impl DeliveryLog + RejectedEvents),
    now_ms: i64,
) -> Result<InvocationResponse, StoreError> {
    let body = match invocation.message_body(TRIGGER) {
        Ok(body) => body,
        Err(error) => {
            let problem = Problem { path: format!("Data.{TRIGGER}"), message: error.to_string() };
            return reject(invocation, store, vec![problem], String::new(), now_ms).await;
        }
    };
    let source_id = source_id(invocation, &body);
    let event = match decode(&body) {
        Ok(event) => event,
        Err(report) => {
            let kept = String::from_utf8_lossy(&body[..body.len().min(REJECTED_BODY_KEPT)]).into_owned();
            return reject(invocation, store, report.problems().to_vec(), kept, now_ms).await;
        }
    };
    let correlation_id =
        invocation.metadata_text("CorrelationId").or_else(|| invocation.application_property("x-correlation-id"));
    let mut messages = Vec::new();
    for delivery in dispatch(&source_id, &event, &webhooks.index) {
        let delivery = NewDelivery {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            event: delivery.event.to_owned(),
            body: delivery.body,
            source_id: source_id.clone(),
            correlation_id: correlation_id.clone(),
        };
        store.log_delivery(&delivery, now_ms).await?;
        let job =
            serde_json::to_string(&DeliveryJob::new(&delivery)).map_err(|e| StoreError::Storage(e.to_string()))?;
        messages.push(job);
    }
    let line = format!("{} from message {source_id}: {} deliveries", event.name(), messages.len());
    Ok(InvocationResponse::default().messages(OUTPUT, messages).log(line))
}

/// The message's id; without one, a digest of its body, which a redelivery shares too.
fn source_id(invocation: &Invocation, body: &[u8]) -> String {
    invocation.metadata_text("MessageId").filter(|id| !id.is_empty()).unwrap_or_else(|| {
        let digest = Sha256::digest(body);
        format!("sha256-{}", digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
    })
}

/// Records a message that cannot be handled, and answers 2xx: a redelivery cannot make it valid.
pub(super) async fn reject(
    invocation: &Invocation,
    store: &impl RejectedEvents,
    problems: Vec<Problem>,
    body: String,
    now_ms: i64,
) -> Result<InvocationResponse, StoreError> {
    let id = invocation.metadata_text("MessageId").unwrap_or_else(|| format!("unidentified-{now_ms}"));
    let reason = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; ");
    tracing::warn!(message_id = %id, %reason, "event rejected");
    store.reject(Rejected { id: id.clone(), received_at_ms: now_ms, problems, body }).await?;
    Ok(InvocationResponse::default().log(format!("message {id} rejected, not retried: {reason}")))
}
