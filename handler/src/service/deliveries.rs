//! Reading the attempt log (one delivery, a webhook's, its health), and sending deliveries again: one (a manual
//! retry), or a webhook's dead and skipped ones of a time window (recovery). Each keeps its id, so a receiver
//! that deduplicates by `webhook-id` sees one delivery.

use super::{Service, ServiceError};
use crate::ports::Page;
use dispatcher_core::model::{DeliveryCounts, DeliveryId, LogEntry, Status, WebhookId};

/// The window of a webhook's health.
const HEALTH_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// What [`Service::health`] found.
#[derive(Debug)]
pub struct Health {
    pub since_ms: i64,
    pub counts: DeliveryCounts,
    pub last_failure: Option<LogEntry>,
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound { what: "delivery", id: id.to_owned() }
}

impl Service {
    /// A webhook's deliveries (in `status`, when given) with their attempts, newest first.
    pub async fn deliveries(
        &self,
        webhook_id: &WebhookId,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<LogEntry>, ServiceError> {
        self.webhook(webhook_id).await?;
        Ok(self.log.list_deliveries(webhook_id, status, limit, cursor).await?)
    }

    /// How webhook `id`'s URL fared over the last 24 hours: its deliveries by status, and its latest failure (a
    /// delivery now retrying or dead, of any age) with the attempts that tell why. Callbacks, sent to the
    /// webhook's owner, are left out.
    pub async fn health(&self, id: &WebhookId) -> Result<Health, ServiceError> {
        self.webhook(id).await?;
        let since_ms = self.clock.now_ms() - HEALTH_WINDOW_MS;
        let (counts, last_failure) =
            tokio::try_join!(self.log.count_deliveries(id, since_ms), self.log.last_failure(id))?;
        Ok(Health { since_ms, counts, last_failure })
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

    /// Sends again every dead or skipped delivery of webhook `id` created from `since_ms` until `until_ms`, each
    /// with its id; returns how many. A disabled webhook is refused: enable it first.
    pub async fn recover(&self, id: &WebhookId, since_ms: i64, until_ms: i64) -> Result<usize, ServiceError> {
        let (webhook, _) = self.versioned_webhook(id).await?;
        if webhook.config.disabled {
            return Err(ServiceError::Conflict(format!(
                "webhook {id:?} is disabled: enable it (PATCH {{\"disabled\": false}}) before recovering its deliveries"
            )));
        }
        let (mut cursor, mut recovered) = (None, 0);
        loop {
            let (entries, next) = self.log.list_deliveries(id, None, 100, cursor.as_deref()).await?;
            for entry in &entries {
                let in_window = (since_ms..until_ms).contains(&entry.created_at_ms);
                if in_window && matches!(entry.status, Status::Dead | Status::Skipped) {
                    match self.retry(entry.delivery.id.as_str()).await {
                        Ok(_) => recovered += 1,
                        // Being attempted already: nothing to recover.
                        Err(ServiceError::InFlight(_)) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            // Newest first: past `since_ms`, the rest is older still.
            let older = entries.last().is_some_and(|e| e.created_at_ms < since_ms);
            match next {
                Some(next) if !older => cursor = Some(next),
                _ => return Ok(recovered),
            }
        }
    }
}
