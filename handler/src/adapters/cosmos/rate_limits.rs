//! The webhooks' rate limits on Azure, held across instances: each rate-limited webhook's theoretical arrival
//! time (`policy::rate`) is an item of `rate-limits`, moved on under optimistic concurrency (`If-Match`), so
//! that two instances never take one slot. Reserving costs a point read and a write (about 11 RU).

use super::query::point_read;
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{RateLimits, StoreError};
use async_trait::async_trait;
use azure_data_cosmos::options::{ItemWriteOptions, Precondition};
use dispatcher_core::model::WebhookId;
use dispatcher_core::policy::rate;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Writes lost to other instances before a delivery gives up reserving (and asks again a little later).
const RACES: usize = 8;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pace {
    id: String,
    /// The webhook's next free slot, in microseconds since the epoch.
    tat_us: i64,
}

#[async_trait]
impl RateLimits for CosmosStore {
    async fn reserve(&self, webhook_id: &WebhookId, limit: NonZeroU32, now_ms: i64) -> Result<Option<i64>, StoreError> {
        let container = &self.containers().await?.rate_limits;
        for _ in 0..RACES {
            let read: Option<(Pace, Option<String>)> =
                point_read(container, webhook_id.as_str(), webhook_id.as_str(), "rate limit").await?;
            let slot = rate::reserve(read.as_ref().map(|(pace, _)| pace.tat_us), now_ms * 1000, limit.get());
            let pace = Pace { id: webhook_id.to_string(), tat_us: slot.tat_us };
            let etag = read.and_then(|(_, etag)| etag);
            let write = || async {
                match &etag {
                    Some(etag) => {
                        let precondition = Precondition::if_match(etag.clone());
                        let options = ItemWriteOptions::default().with_precondition(precondition);
                        container.replace_item(webhook_id.to_string(), webhook_id.as_str(), &pace, Some(options)).await
                    }
                    None => container.create_item(webhook_id.to_string(), webhook_id.as_str(), &pace, None).await,
                }
            };
            let written = unthrottled("reserving a rate-limit slot", BUDGET, write).await;
            match written {
                Ok(_) => return Ok(Some(slot.at_ms())),
                // Another instance took the slot first: read the next one.
                Err(e) if e.status().is_precondition_failed() || e.status().is_conflict() => continue,
                Err(e) => return Err(cosmos("reserving a rate-limit slot")(e)),
            }
        }
        Ok(None)
    }
}
