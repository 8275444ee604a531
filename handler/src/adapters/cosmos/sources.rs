//! The inbound sources (one item each, the record whole, versioned by its etag like the webhooks) and the
//! receipts of what they received (one item each, named by a digest of the source and the request's key, and
//! expiring after the de-duplication window by their own `ttl`).

use super::query::{point_read, query_all};
use super::records::{delete_point, get_versioned, put_versioned};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{SourceStore, StoreError, Version};
use async_trait::async_trait;
use azure_data_cosmos::{FeedScope, Query};
use dispatcher_core::inbound::{SourceRecord, DEDUPLICATION_WINDOW};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Receipt {
    id: String,
    received_at_ms: i64,
    /// Seconds the item lives (the container's TTL being the log's retention).
    ttl: u64,
}

/// A receipt's item id: keys are the providers' (any characters), ids may not hold `/`, `\`, `?` or `#`.
fn receipt_id(source: &str, key: &str) -> String {
    hex::encode(Sha256::new().chain_update(source).chain_update([0]).chain_update(key).finalize())
}

#[async_trait]
impl SourceStore for CosmosStore {
    async fn put_source(&self, source: &SourceRecord, expected: Option<&Version>) -> Result<Version, StoreError> {
        put_versioned(&self.containers().await?.sources, &source.id, source, expected, "source").await
    }

    async fn get_source(&self, id: &str) -> Result<Option<(SourceRecord, Version)>, StoreError> {
        get_versioned(&self.containers().await?.sources, id, "source").await
    }

    async fn list_sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        let container = &self.containers().await?.sources;
        let query = Query::from("SELECT * FROM c");
        let mut sources: Vec<SourceRecord> =
            query_all(container, query, FeedScope::full_container(), "listing sources").await?;
        sources.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(sources)
    }

    async fn delete_source(&self, id: &str) -> Result<bool, StoreError> {
        delete_point(&self.containers().await?.sources, id, "source").await
    }

    async fn received(&self, source: &str, key: &str, since_ms: i64) -> Result<bool, StoreError> {
        let id = receipt_id(source, key);
        let read = point_read::<Receipt>(&self.containers().await?.receipts, &id, &id, "receipt").await?;
        Ok(read.is_some_and(|(receipt, _)| receipt.received_at_ms >= since_ms))
    }

    async fn record_receipt(&self, source: &str, key: &str, at_ms: i64) -> Result<(), StoreError> {
        let container = &self.containers().await?.receipts;
        let receipt =
            Receipt { id: receipt_id(source, key), received_at_ms: at_ms, ttl: DEDUPLICATION_WINDOW.as_secs() };
        let upsert = || container.upsert_item(receipt.id.clone(), &receipt.id, &receipt, None);
        unthrottled("recording a receipt", BUDGET, upsert).await.map_err(cosmos("recording a receipt"))?;
        Ok(())
    }
}
