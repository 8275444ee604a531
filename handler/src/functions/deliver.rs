//! DeliverWebhook and OnDeliveryDeadLettered: one attempt of a delivery job through the shared engine, and the
//! dead path for the jobs Service Bus gave up itself. The rules are local mode's (`delivery::Engine`); the queue
//! is Service Bus: a retryable failure re-sends the job scheduled for its next attempt (the output binding
//! cannot delay a message), then answers 2xx so that this message completes.

use super::incoming::reject;
use super::invocation::{Invocation, InvocationResponse};
use super::jobs::DeliveryJob;
use super::servicebus::ServiceBusQueue;
use crate::delivery::{Attempted, Engine};
use crate::local::WebhookSet;
use crate::store::{DeliveryLog, NewDelivery, Next, RejectedEvents, StoreError, Webhooks, REJECTED_BODY_KEPT};
use crate::validation::Problem;
use tracing::Instrument;

/// The trigger binding of both functions (see `functions::FUNCTIONS`).
pub const TRIGGER: &str = "msg";

/// What delivering needs.
pub struct Delivering<'a, S> {
    pub engine: &'a Engine,
    pub webhooks: &'a WebhookSet,
    pub store: &'a S,
    /// Where retries are re-sent: the deliveries queue.
    pub retries: &'a ServiceBusQueue,
    pub now_ms: i64,
}

/// A handled invocation: the answer, and whether a webhook changed (the webhook cache is stale).
pub struct Handled {
    pub response: InvocationResponse,
    pub webhooks_changed: bool,
}

impl From<InvocationResponse> for Handled {
    fn from(response: InvocationResponse) -> Handled {
        Handled { response, webhooks_changed: false }
    }
}

/// Why an invocation failed in a way a redelivery of the message may cure: answered non-2xx.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Queue(String),
}

/// The job in the message; a message that is not one is recorded as rejected (a redelivery cannot fix it).
async fn read_job<S: RejectedEvents>(
    invocation: &Invocation,
    store: &S,
    now_ms: i64,
) -> Result<Result<DeliveryJob, InvocationResponse>, StoreError> {
    let body = match invocation.message_body(TRIGGER) {
        Ok(body) => body,
        Err(error) => {
            let problem = Problem { path: format!("Data.{TRIGGER}"), message: error.to_string() };
            return reject(invocation, store, vec![problem], String::new(), now_ms).await.map(Err);
        }
    };
    match serde_json::from_slice::<DeliveryJob>(&body) {
        Ok(job) => Ok(Ok(job)),
        Err(error) => {
            let problem = Problem { path: format!("Data.{TRIGGER}"), message: format!("not a delivery job: {error}") };
            let kept = String::from_utf8_lossy(&body[..body.len().min(REJECTED_BODY_KEPT)]).into_owned();
            reject(invocation, store, vec![problem], kept, now_ms).await.map(Err)
        }
    }
}

/// Runs `change` on the delivery's log entry, logging the delivery first when the log does not have it (its entry
/// expired, or the job came from elsewhere): `change` answers false when there was no entry to change.
async fn on_log_entry<F, Fut>(
    store: &impl DeliveryLog,
    delivery: &NewDelivery,
    now_ms: i64,
    change: F,
) -> Result<(), StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    if !change().await? {
        store.log_delivery(delivery, now_ms).await?;
        change().await?;
    }
    Ok(())
}

/// Ends the delivery dead, keeping the attempts made.
async fn give_up(
    store: &impl DeliveryLog,
    delivery: &NewDelivery,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    on_log_entry(store, delivery, now_ms, || store.give_up(delivery.key(), reason)).await
}

/// DeliverWebhook: attempt number `attemptsMade + 1` of the job.
pub async fn deliver_webhook<S>(invocation: &Invocation, ctx: &Delivering<'_, S>) -> Result<Handled, Failure>
where
    S: DeliveryLog + Webhooks + RejectedEvents,
{
    let job = match read_job(invocation, ctx.store, ctx.now_ms).await? {
        Ok(job) => job,
        Err(rejected) => return Ok(rejected.into()),
    };
    let delivery = job.delivery();
    let span = crate::delivery::span(&delivery);
    attempt_job(job, delivery, ctx).instrument(span).await
}

/// The attempt of a job to a known webhook, in the delivery's span.
async fn attempt_job<S>(job: DeliveryJob, delivery: NewDelivery, ctx: &Delivering<'_, S>) -> Result<Handled, Failure>
where
    S: DeliveryLog + Webhooks + RejectedEvents,
{
    let webhook = ctx.webhooks.by_id.get(&delivery.webhook_id).filter(|w| !w.config.disabled);
    let Some(webhook) = webhook else {
        let reason = "the webhook was deleted or disabled before the delivery could be made";
        give_up(ctx.store, &delivery, reason, ctx.now_ms).await?;
        tracing::warn!(reason, "delivery dropped");
        return Ok(InvocationResponse::default().log(format!("delivery {} dropped: {reason}", delivery.id)).into());
    };
    let n = job.attempts_made + 1;
    let Attempted { record, next, disable_webhook } = ctx.engine.attempt(&delivery, webhook, n).await;
    tracing::info!(attempt = n, status = ?record.status_code, error = record.error.as_deref().unwrap_or(""), next = ?next, "attempted");
    let log = || ctx.store.log_attempt(delivery.key(), n, record.clone(), next.clone());
    on_log_entry(ctx.store, &delivery, ctx.now_ms, log).await?;
    let mut webhooks_changed = false;
    if let Some(reason) = disable_webhook {
        tracing::warn!("webhook disabled after 410 Gone");
        ctx.store.put_webhook(&webhook.disabled(reason, ctx.now_ms)).await?;
        webhooks_changed = true;
    }
    let outcome = match &record.status_code {
        Some(code) => format!("HTTP {code}"),
        None => record.error.clone().unwrap_or_default(),
    };
    let line = match next {
        Next::Succeeded => format!("delivery {} attempt {n}: {outcome}, delivered", delivery.id),
        Next::RetryAt { at_ms } => {
            let next = DeliveryJob { attempts_made: n, ..job };
            ctx.retries.schedule(&next, at_ms).await.map_err(Failure::Queue)?;
            format!("delivery {} attempt {n}: {outcome}, retried at {at_ms}", delivery.id)
        }
        Next::Dead { reason } => {
            call_back(ctx.engine, &delivery, webhook, n, record.status_code).await;
            format!("delivery {} attempt {n}: {outcome}, dead: {reason}", delivery.id)
        }
    };
    Ok(Handled { response: InvocationResponse::default().log(line), webhooks_changed })
}

/// OnDeliveryDeadLettered: Service Bus gave the job up itself (its delivery count ran out, or it expired):
/// the same dead path as a delivery that ran out of attempts.
pub async fn on_dead_lettered<S>(invocation: &Invocation, ctx: &Delivering<'_, S>) -> Result<Handled, Failure>
where
    S: DeliveryLog + RejectedEvents,
{
    let job = match read_job(invocation, ctx.store, ctx.now_ms).await? {
        Ok(job) => job,
        Err(rejected) => return Ok(rejected.into()),
    };
    let delivery = job.delivery();
    let cause = invocation.application_property("DeadLetterReason").unwrap_or_else(|| "no reason given".into());
    let description = invocation.application_property("DeadLetterErrorDescription").unwrap_or_default();
    let reason = match description.is_empty() {
        true => format!("Service Bus dead-lettered the delivery job: {cause}"),
        false => format!("Service Bus dead-lettered the delivery job: {cause} ({description})"),
    };
    let logged = ctx.store.get_delivery(delivery.id).await?;
    let last_status = logged.and_then(|record| record.attempts.last().and_then(|a| a.status_code));
    give_up(ctx.store, &delivery, &reason, ctx.now_ms).await?;
    tracing::warn!(delivery_id = %delivery.id, %reason, "delivery dead");
    if let Some(webhook) = ctx.webhooks.by_id.get(&delivery.webhook_id) {
        call_back(ctx.engine, &delivery, webhook, job.attempts_made, last_status).await;
    }
    Ok(InvocationResponse::default().log(format!("delivery {} dead: {reason}", delivery.id)).into())
}

async fn call_back(
    engine: &Engine,
    delivery: &NewDelivery,
    webhook: &crate::store::StoredWebhook,
    attempts: u32,
    status_code: Option<u16>,
) {
    if let Some(callback) = engine.failure_callback(delivery, webhook, attempts, status_code).await {
        tracing::info!(status = ?callback.status_code, error = callback.error.as_deref().unwrap_or(""), "failure callback sent");
    }
}
