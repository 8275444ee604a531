//! The webhooks' rate limits in memory: exact, since one process makes every delivery of `handler local`. A
//! restart forgets the slots, so at most one delivery a webhook goes early then.

use crate::ports::{RateLimits, StoreError};
use async_trait::async_trait;
use dispatcher_core::model::WebhookId;
use dispatcher_core::policy::rate;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

/// Each rate-limited webhook's next free slot, in microseconds since the epoch.
#[derive(Default)]
pub struct MemoryRateLimits(Mutex<HashMap<WebhookId, i64>>);

#[async_trait]
impl RateLimits for MemoryRateLimits {
    async fn reserve(&self, webhook_id: &WebhookId, limit: NonZeroU32, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let mut next_free = self.0.lock().map_err(|_| StoreError::Closed)?;
        let slot = rate::reserve(next_free.get(webhook_id).copied(), now_ms * 1000, limit.get());
        next_free.insert(webhook_id.clone(), slot.tat_us);
        Ok(Some(slot.at_ms()))
    }
}
