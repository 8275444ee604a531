//! The inbound sources (a table of versioned documents, as the webhooks: `records.rs`) and the receipts of
//! what they received, pruned with the log (`retention.rs`).

use super::records::SOURCES;
use super::schema::storage;
use super::SqliteStore;
use crate::ports::{SourceStore, StoreError, Version};
use async_trait::async_trait;
use dispatcher_core::inbound::SourceRecord;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl SourceStore for SqliteStore {
    async fn put_source(&self, source: &SourceRecord, expected: Option<&Version>) -> Result<Version, StoreError> {
        self.put_document(SOURCES, source.id.clone(), source, expected).await
    }

    async fn get_source(&self, id: &str) -> Result<Option<(SourceRecord, Version)>, StoreError> {
        self.get_document(SOURCES, id.to_owned()).await
    }

    async fn list_sources(&self) -> Result<Vec<SourceRecord>, StoreError> {
        self.list_documents(SOURCES).await
    }

    async fn delete_source(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| Ok(c.execute("DELETE FROM sources WHERE id = ?1", [id.as_str()]).map_err(storage)? > 0))
            .await
    }

    async fn received(&self, source: &str, key: &str, since_ms: i64) -> Result<bool, StoreError> {
        let (source, key) = (source.to_owned(), key.to_owned());
        self.read(move |c| {
            let query = "SELECT 1 FROM receipts WHERE source_id = ?1 AND key = ?2 AND received_at >= ?3";
            let found: Option<i64> =
                c.query_row(query, params![source, key, since_ms], |r| r.get(0)).optional().map_err(storage)?;
            Ok(found.is_some())
        })
        .await
    }

    async fn record_receipt(&self, source: &str, key: &str, at_ms: i64) -> Result<(), StoreError> {
        let (source, key) = (source.to_owned(), key.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO receipts (source_id, key, received_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(source_id, key) DO UPDATE SET received_at = excluded.received_at",
                params![source, key, at_ms],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }
}

impl SqliteStore {
    /// Forgets the receipts from before `cutoff_ms`, a batch at a time (each its own write), until none is left or
    /// `stop` answers true after a batch; how many.
    pub async fn prune_receipts(
        &self,
        cutoff_ms: i64,
        batch: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<usize, StoreError> {
        let mut pruned = 0;
        loop {
            let deleted = self
                .write(move |c| {
                    c.execute(
                        "DELETE FROM receipts WHERE (source_id, key) IN (SELECT source_id, key FROM receipts
                           WHERE received_at < ?1 LIMIT ?2)",
                        params![cutoff_ms, batch as i64],
                    )
                    .map_err(storage)
                })
                .await?;
            pruned += deleted;
            if deleted < batch || stop() {
                return Ok(pruned);
            }
            tokio::task::yield_now().await;
        }
    }
}
