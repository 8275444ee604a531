//! Auto-disable, around each attempt: a failed attempt extends its webhook's failure streak and disables the
//! webhook once the streak is past `--disable-after` (`dispatcher_core::policy::health`), with a signed
//! `WebhookDisabled` callback; a success ends the streak. The streak is read from the store, not the cache, and
//! written only when it starts, for its first counts, when it ends and when it disables: a handful of writes a
//! streak. On Azure, a success seen through another instance's cache (up to DISPATCHER_WEBHOOK_CACHE_SECONDS
//! old) may miss a streak that began meanwhile; the next success past that ends it. Each write is a change of
//! the webhook as stored (`update_webhook`): a PATCH or a rotation made meanwhile is kept.

use super::versioned::Updated;
use super::{timestamp, Service, ServiceError};
use dispatcher_core::model::Webhook;
use dispatcher_core::policy::health::{after_failure, AfterFailure};

impl Service {
    /// After a successful attempt: ends the webhook's failure streak, if it had one.
    pub(super) async fn attempt_succeeded(&self, webhook: &Webhook) -> Result<(), ServiceError> {
        if webhook.failure_streak.is_none() {
            return Ok(());
        }
        // A success of the URL it had before a change says nothing of the streak of the one it has now.
        let ended = |fresh: &Webhook| {
            let ends = fresh.failure_streak.is_some() && fresh.config.url == webhook.config.url;
            Ok(ends.then(|| Webhook { failure_streak: None, ..fresh.clone() }))
        };
        self.update_webhook(&webhook.id, None, ended).await?;
        Ok(())
    }

    /// After a failed attempt (`outcome` says how it failed): extends the streak, and disables the webhook when
    /// the streak is past the window.
    pub(super) async fn attempt_failed(&self, webhook: &Webhook, outcome: &str) -> Result<(), ServiceError> {
        // Off: a streak would never disable anything, so it is not kept (no read, no write per failure).
        if self.disable_after.is_none() {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        let extended = |fresh: &Webhook| {
            // Nor does a failure of the URL it had count toward the new one's.
            if fresh.config.disabled || fresh.config.url != webhook.config.url {
                return Ok(None);
            }
            Ok(match after_failure(fresh.failure_streak, now_ms, self.disable_after) {
                AfterFailure::Continue { streak, record } => {
                    record.then(|| Webhook { failure_streak: Some(streak), ..fresh.clone() })
                }
                AfterFailure::Disable { streak } => {
                    let reason = format!(
                        "every attempt failed since {} ({} attempts; the last: {outcome})",
                        timestamp(streak.since_ms),
                        streak.failed
                    );
                    let streaked = Webhook { failure_streak: Some(streak), ..fresh.clone() };
                    Some(streaked.disabled(reason, now_ms))
                }
            })
        };
        let now = match self.update_webhook(&webhook.id, None, extended).await? {
            Updated::Changed(now, _) if now.config.disabled => {
                tracing::warn!(webhook_id = %now.id, reason = now.disabled_reason.as_deref(), "webhook disabled");
                now
            }
            Updated::Changed(..) | Updated::Missing => return Ok(()),
            Updated::Unchanged(now, _) => now,
        };
        self.announce_disabled(&now, webhook).await
    }
}
