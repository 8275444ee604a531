//! The ports on Service Bus queues: the events queue, where a published event waits for OnIncomingEvent, and the
//! deliveries queue, whose messages are jobs (`model::Job` as JSON) for DeliverWebhook.
//!
//! A job's `MessageId` names its attempt (`{delivery id}-{attempts made}`), so that duplicate detection drops a
//! retry scheduled twice; a manual retry gets an id of its own, never a duplicate of the scheduled one, and a
//! job waiting for its rate-limit slot one naming the slot.

use super::{Outgoing, QueueSender};
use crate::ports::{retry_message_id, DeliveryQueue, EventQueue, NewDeliveries, QueueError};
use async_trait::async_trait;
use dispatcher_core::dispatch::Source;
use dispatcher_core::model::Job;
use std::time::{SystemTime, UNIX_EPOCH};

/// The events queue.
pub struct ServiceBusEvents(pub QueueSender);

#[async_trait]
impl EventQueue for ServiceBusEvents {
    async fn send_event(&self, body: &[u8], source: &Source) -> Result<(), QueueError> {
        // The MessageId is the source of the delivery ids, as for events sent to the queue directly.
        self.send(body, source, &source.id, None).await
    }

    /// A scheduled message whose id names the try (`ports::retry_message_id`: duplicate detection drops a try
    /// sent twice), and whose application properties say which event and which try, for OnIncomingEvent.
    async fn send_event_later(&self, body: &[u8], source: &Source, attempt: u32, at_ms: i64) -> Result<(), QueueError> {
        self.send(body, source, &retry_message_id(&source.id, attempt), Some((at_ms, attempt))).await
    }
}

impl ServiceBusEvents {
    async fn send(
        &self,
        body: &[u8],
        source: &Source,
        message_id: &str,
        later: Option<(i64, u32)>,
    ) -> Result<(), QueueError> {
        let body =
            std::str::from_utf8(body).map_err(|e| QueueError::Unavailable(format!("the event is not UTF-8: {e}")))?;
        let message = Outgoing {
            message_id,
            correlation_id: source.correlation_id.as_deref(),
            scheduled_at_ms: later.map(|(at_ms, _)| at_ms),
            traceparent: source.traceparent.as_deref(),
            body,
            retry: later.map(|(_, attempt)| (source.id.as_str(), attempt)),
        };
        self.0.send(message).await.map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

/// The deliveries queue: a message per job, whose id tells a job sent twice from the next attempt's.
pub struct ServiceBusDeliveries(pub QueueSender);

impl ServiceBusDeliveries {
    async fn send_job(&self, job: &Job, message_id: &str, scheduled_at_ms: Option<i64>) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).map_err(|e| QueueError::Unavailable(e.to_string()))?;
        let correlation_id = job.delivery.correlation_id.as_deref();
        // The job carries its trace context itself (`Delivery::traceparent`).
        let message =
            Outgoing { message_id, correlation_id, scheduled_at_ms, traceparent: None, body: &body, retry: None };
        self.0.send(message).await.map_err(|e| QueueError::Unavailable(e.to_string()))
    }
}

/// `{delivery id}-{attempts made}`: the id of the job for the next attempt.
fn attempt_message_id(job: &Job) -> String {
    format!("{}-{}", job.delivery.id, job.attempts_made)
}

#[async_trait]
impl NewDeliveries for ServiceBusDeliveries {
    /// Sends every job, those of deliveries logged before too: whether their first job was sent is unknown, and
    /// DeliverWebhook reads the log before attempting a job without a version, so a duplicate sends nothing.
    async fn enqueue(&self, jobs: Vec<Job>, _now_ms: i64) -> Result<(), QueueError> {
        for job in &jobs {
            self.send_job(job, &attempt_message_id(job), None).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueue for ServiceBusDeliveries {
    async fn schedule(&self, job: &Job, at_ms: i64) -> Result<(), QueueError> {
        self.send_job(job, &attempt_message_id(job), Some(at_ms)).await
    }

    async fn resend(&self, job: &Job) -> Result<(), QueueError> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        self.send_job(job, &format!("{}-retry-{nanos}", attempt_message_id(job)), None).await
    }

    async fn defer(&self, job: &Job, at_ms: i64) -> Result<(), QueueError> {
        self.send_job(job, &format!("{}-at-{at_ms}", attempt_message_id(job)), Some(at_ms)).await
    }
}
