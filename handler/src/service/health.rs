//! Auto-disable, around each attempt: a failed attempt extends its webhook's failure streak and disables the
//! webhook once the streak is past `--disable-after` (`dispatcher_core::policy::health`), with a signed
//! `WebhookDisabled` callback; a success ends the streak. The streak is read from the store, not the cache, and
//! written only when it starts, for its first counts, when it ends and when it disables: a handful of writes a
//! streak. On Azure, a success seen through another instance's cache (up to DISPATCHER_WEBHOOK_CACHE_SECONDS
//! old) may miss a streak that began meanwhile; the next success past that ends it.

use super::{timestamp, Service, ServiceError};
use dispatcher_core::callback;
use dispatcher_core::model::Webhook;
use dispatcher_core::policy::health::{after_failure, AfterFailure};

impl Service {
    /// After a successful attempt: ends the webhook's failure streak, if it had one.
    pub(super) async fn attempt_succeeded(&self, webhook: &Webhook) -> Result<(), ServiceError> {
        if webhook.failure_streak.is_none() {
            return Ok(());
        }
        let store = self.webhooks.store();
        if let Some(mut fresh) = store.get_webhook(&webhook.id).await?.filter(|w| w.failure_streak.is_some()) {
            fresh.failure_streak = None;
            store.put_webhook(&fresh).await?;
            self.webhooks.refresh().await?;
        }
        Ok(())
    }

    /// After a failed attempt (`outcome` says how it failed): extends the streak, and disables the webhook when
    /// the streak is past the window.
    pub(super) async fn attempt_failed(&self, webhook: &Webhook, outcome: &str) -> Result<(), ServiceError> {
        // Off: a streak would never disable anything, so it is not kept (no read, no write per failure).
        if self.disable_after.is_none() {
            return Ok(());
        }
        let store = self.webhooks.store();
        let Some(mut fresh) = store.get_webhook(&webhook.id).await? else { return Ok(()) };
        if fresh.config.disabled {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        match after_failure(fresh.failure_streak, now_ms, self.disable_after) {
            AfterFailure::Continue { streak, record } => {
                if record {
                    fresh.failure_streak = Some(streak);
                    store.put_webhook(&fresh).await?;
                    self.webhooks.refresh().await?;
                }
            }
            AfterFailure::Disable { streak } => {
                let reason = format!(
                    "every attempt failed since {} ({} attempts; the last: {outcome})",
                    timestamp(streak.since_ms),
                    streak.failed
                );
                fresh.failure_streak = Some(streak);
                let disabled = fresh.disabled(reason.clone(), now_ms);
                store.put_webhook(&disabled).await?;
                self.webhooks.refresh().await?;
                tracing::warn!(webhook_id = %disabled.id, %reason, "webhook disabled");
                self.call_back(callback::disabled(&disabled, &reason, &timestamp(now_ms))).await?;
            }
        }
        Ok(())
    }
}
