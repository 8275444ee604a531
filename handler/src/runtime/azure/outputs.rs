//! OnIncomingEvent's delivery queue: the `deliveries` output binding, which the host sends to the deliveries
//! queue once the invocation answers 2xx. Each delivery is logged first; the job of a delivery this invocation
//! logged carries the entry's version, so that its first attempt writes without a read. A delivery logged
//! before (a redelivered message) gets a job all the same, without a version: whether the first invocation's
//! outputs were ever sent is unknown, and DeliverWebhook reads the log before attempting such a job, so a
//! duplicate sends nothing.

use crate::ports::{DeliveryLog, NewDeliveries, QueueError};
use async_trait::async_trait;
use dispatcher_core::model::{Delivery, Job};
use std::sync::{Arc, Mutex};

pub struct OutputBinding {
    log: Arc<dyn DeliveryLog>,
    messages: Mutex<Vec<String>>,
}

impl OutputBinding {
    pub fn new(log: Arc<dyn DeliveryLog>) -> OutputBinding {
        OutputBinding { log, messages: Mutex::default() }
    }

    /// The jobs for the output binding, each a message of JSON text.
    pub fn into_messages(self) -> Vec<String> {
        self.messages.into_inner().unwrap_or_default()
    }
}

/// New deliveries only: a message of an output binding cannot be delayed, nor sent again.
#[async_trait]
impl NewDeliveries for OutputBinding {
    async fn submit(&self, deliveries: Vec<Delivery>, now_ms: i64) -> Result<(), QueueError> {
        let versions = self.log.log_deliveries(&deliveries, now_ms).await?;
        let jobs = deliveries.into_iter().zip(versions).map(|(delivery, version)| Job::first(delivery, version));
        let messages: Vec<String> = jobs
            .map(|job| serde_json::to_string(&job))
            .collect::<Result<_, _>>()
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        if let Ok(mut outputs) = self.messages.lock() {
            outputs.extend(messages);
        }
        Ok(())
    }
}
