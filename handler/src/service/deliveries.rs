//! Reading the attempt log, and sending a delivery again (a manual retry keeps its id, so a receiver that
//! deduplicates by `webhook-id` sees one delivery).

use super::{Service, ServiceError};
use crate::ports::Page;
use dispatcher_core::model::{DeliveryId, LogEntry};

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound { what: "delivery", id: id.to_owned() }
}

impl Service {
    /// A webhook's deliveries with their attempts, newest first.
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<LogEntry>, ServiceError> {
        self.webhook(webhook_id).await?;
        Ok(self.log.list_deliveries(webhook_id, limit, cursor).await?)
    }

    /// One delivery with every attempt; `id` as given in a URL.
    pub async fn delivery(&self, id: &str) -> Result<LogEntry, ServiceError> {
        let parsed = DeliveryId::parse(id).ok_or_else(|| not_found(id))?;
        self.log.get_delivery(parsed).await?.ok_or_else(|| not_found(id))
    }

    /// Sends a delivery again now, whatever its status, with the same id and the attempts made so far.
    pub async fn retry(&self, id: &str) -> Result<DeliveryId, ServiceError> {
        let entry = self.delivery(id).await?;
        let Some(job) = self.log.reopen(entry.delivery.id, self.clock.now_ms()).await? else {
            return Err(ServiceError::InFlight(format!("delivery {id:?} is being attempted right now")));
        };
        self.queue.resend(&job).await?;
        Ok(job.delivery.id)
    }
}
