//! Reading the attempt log (one delivery, a webhook's, its health), and sending deliveries again: one (a manual
//! retry), or a webhook's dead and skipped ones of a time window (recovery). Each keeps its id, so a receiver
//! that deduplicates by `webhook-id` sees one delivery.

use super::access::require_writable;
use super::{Service, ServiceError};
use crate::ports::Page;
use dispatcher_core::model::{Access, DeliveryCounts, DeliveryId, LogEntry, Status, WebhookId};

/// The window of a webhook's health.
const HEALTH_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// What [`Service::health`] found.
#[derive(Debug)]
pub struct Health {
    pub since_ms: i64,
    pub counts: DeliveryCounts,
    pub last_failure: Option<LogEntry>,
    /// Why the webhook receives nothing though it is enabled (its tenant's grants no longer cover it).
    pub blocked: Option<String>,
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound { what: "delivery", id: id.to_owned() }
}

impl Service {
    /// A webhook's deliveries (in `status`, when given) with their attempts, newest first.
    pub async fn deliveries(
        &self,
        access: &Access,
        webhook_id: &WebhookId,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<LogEntry>, ServiceError> {
        self.webhook(access, webhook_id).await?;
        Ok(self.log.list_deliveries(webhook_id, status, limit, cursor).await?)
    }

    /// How webhook `id`'s URL fared over the last 24 hours: its deliveries by status, and its latest failure (a
    /// delivery now retrying or dead, of any age) with the attempts that tell why. Callbacks, sent to the
    /// webhook's owner, are left out.
    pub async fn health(&self, access: &Access, id: &WebhookId) -> Result<Health, ServiceError> {
        let webhook = self.webhook(access, id).await?;
        let since_ms = self.clock.now_ms() - HEALTH_WINDOW_MS;
        let (counts, last_failure, index) =
            tokio::try_join!(self.log.count_deliveries(id, since_ms), self.log.last_failure(id), self.webhooks.get())?;
        Ok(Health { since_ms, counts, last_failure, blocked: index.blocked(&webhook) })
    }

    /// One delivery with every attempt; `id` as given in a URL. A tenant sees only its webhooks' deliveries.
    pub async fn delivery(&self, access: &Access, id: &str) -> Result<LogEntry, ServiceError> {
        let parsed = DeliveryId::parse(id).ok_or_else(|| not_found(id))?;
        let entry = self.log.get_delivery(parsed).await?.ok_or_else(|| not_found(id))?;
        if !matches!(access, Access::Operator) {
            let webhook = self.webhooks.store().get_webhook(&entry.delivery.webhook_id).await?;
            if !webhook.is_some_and(|(webhook, _)| access.sees(&webhook)) {
                return Err(not_found(id));
            }
        }
        Ok(entry)
    }

    /// Sends a delivery again now, whatever its status, with the same id and the attempts made so far.
    pub async fn retry(&self, access: &Access, id: &str) -> Result<DeliveryId, ServiceError> {
        require_writable(access)?;
        let entry = self.delivery(access, id).await?;
        if entry.kept_by_transform() {
            return Err(ServiceError::Conflict(format!(
                "delivery {id:?} was kept by its webhook's transform ({}): its logged body is the one before the \
                 transform, so it is not sent again",
                entry.dead_reason.as_deref().unwrap_or("filtered")
            )));
        }
        let Some(job) = self.log.reopen(entry.delivery.id, self.clock.now_ms()).await? else {
            return Err(ServiceError::InFlight(format!("delivery {id:?} is being attempted right now")));
        };
        self.queue.resend(&job).await?;
        self.audit(access, "delivery.retry", id);
        Ok(job.delivery.id)
    }

    /// Sends again every dead or skipped delivery of webhook `id` created from `since_ms` until `until_ms`, each
    /// with its id; returns how many. A disabled webhook is refused: enable it first.
    pub async fn recover(
        &self,
        access: &Access,
        id: &WebhookId,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<usize, ServiceError> {
        require_writable(access)?;
        let (webhook, _) = self.versioned_webhook(access, id).await?;
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
                if in_window && matches!(entry.status, Status::Dead | Status::Skipped) && !entry.kept_by_transform() {
                    match self.retry(access, entry.delivery.id.as_str()).await {
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
                _ => {
                    self.audit(access, "webhook.recover", id.as_str());
                    return Ok(recovered);
                }
            }
        }
    }
}
