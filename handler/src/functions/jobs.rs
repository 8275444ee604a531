//! The message of the deliveries queue: one delivery to make, as OnIncomingEvent outputs it and DeliverWebhook
//! takes it. JSON, camelCase; the body is kept as text so that the exact bytes are sent.

use crate::dispatch::DeliveryId;
use crate::store::{DeliveryRecord, NewDelivery};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJob {
    pub delivery_id: DeliveryId,
    pub webhook_id: String,
    pub event: String,
    pub body: String,
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Attempts made before this message (0 for a new delivery; a scheduled retry carries its count).
    #[serde(default)]
    pub attempts_made: u32,
}

impl DeliveryJob {
    pub fn new(delivery: &NewDelivery) -> DeliveryJob {
        DeliveryJob {
            delivery_id: delivery.id,
            webhook_id: delivery.webhook_id.to_string(),
            event: delivery.event.clone(),
            body: String::from_utf8_lossy(&delivery.body).into_owned(),
            source_id: delivery.source_id.clone(),
            correlation_id: delivery.correlation_id.clone(),
            attempts_made: 0,
        }
    }

    /// The job that sends a logged delivery again (a replay): the attempts made so far come with it.
    pub fn from_record(record: &DeliveryRecord) -> DeliveryJob {
        DeliveryJob {
            delivery_id: record.id,
            webhook_id: record.webhook_id.clone(),
            event: record.event.clone(),
            body: record.payload.get().to_owned(),
            source_id: record.source_id.clone(),
            correlation_id: record.correlation_id.clone(),
            attempts_made: record.attempts.len() as u32,
        }
    }

    /// The delivery this job is about.
    pub fn delivery(&self) -> NewDelivery {
        NewDelivery {
            id: self.delivery_id,
            webhook_id: self.webhook_id.as_str().into(),
            event: self.event.clone(),
            body: self.body.clone().into_bytes(),
            source_id: self.source_id.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }
}
