//! OnIncomingEvent's delivery queue: the `deliveries` output binding, which the host sends to the deliveries
//! queue once the invocation answers 2xx. The job of a delivery this invocation logged carries the entry's
//! version, so that its first attempt writes without a read. A delivery logged before (a redelivered message)
//! gets a job all the same, without a version: whether the first invocation's outputs were ever sent is
//! unknown, and DeliverWebhook reads the log before attempting such a job, so a duplicate sends nothing.

use crate::ports::{NewDeliveries, QueueError};
use async_trait::async_trait;
use dispatcher_core::model::Job;
use std::sync::Mutex;

#[derive(Default)]
pub struct OutputBinding {
    messages: Mutex<Vec<String>>,
}

impl OutputBinding {
    /// The jobs for the output binding, each a message of JSON text.
    pub fn into_messages(self) -> Vec<String> {
        self.messages.into_inner().unwrap_or_default()
    }
}

/// New deliveries only: a message of an output binding cannot be delayed, nor sent again.
#[async_trait]
impl NewDeliveries for OutputBinding {
    async fn enqueue(&self, jobs: Vec<Job>, _now_ms: i64) -> Result<(), QueueError> {
        let messages: Vec<String> = jobs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        if let Ok(mut outputs) = self.messages.lock() {
            outputs.extend(messages);
        }
        Ok(())
    }
}
