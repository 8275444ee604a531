//! The webhooks (each kept whole as its JSON document) and the rejected events.

use super::log::{cut_page, parse_cursor};
use super::schema::storage;
use super::SqliteStore;
use crate::ports::{Page, RejectedEvents, StoreError, Version, WebhookStore};
use async_trait::async_trait;
use dispatcher_core::model::{Rejected, Status, Webhook, WebhookId};
use rusqlite::{params, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The version column as the port's opaque version.
fn version_of(n: i64) -> Version {
    Version(n.to_string())
}

/// A new version: random, so that a webhook deleted and registered again under its id never has a version an
/// older read of it had (a counter starting over would let that read's write through).
fn new_version() -> Result<i64, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Storage(format!("no random version: {e}")))?;
    Ok(i64::from_le_bytes(bytes) & i64::MAX)
}

/// A table of items kept whole as JSON documents under a version (`id`, `doc`, `version`): the webhooks and the
/// tenants, written conditionally as the ports ask.
#[derive(Clone, Copy)]
pub(super) struct Documents {
    pub table: &'static str,
    /// What an item is, in errors ("webhook").
    pub what: &'static str,
}

pub(super) const WEBHOOKS: Documents = Documents { table: "webhooks", what: "webhook" };
pub(super) const TENANTS: Documents = Documents { table: "tenants", what: "tenant" };
pub(super) const SOURCES: Documents = Documents { table: "sources", what: "source" };

fn parse<T: DeserializeOwned>(what: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what} document: {e}")))
}

impl SqliteStore {
    /// Creates item `id` when `expected` is `None` (a conflict when it is taken), else replaces it when its stored
    /// version is still `expected`. A version this store never gave out (not a number) matches no row.
    pub(super) async fn put_document<T: Serialize>(
        &self,
        documents: Documents,
        id: String,
        item: &T,
        expected: Option<&Version>,
    ) -> Result<Version, StoreError> {
        let doc = serde_json::to_string(item).map_err(storage)?;
        let expected = expected.map(|v| v.0.parse::<i64>().unwrap_or(-1));
        let version = new_version()?;
        let (named, table) = (id.clone(), documents.table);
        // A conflict is an answer, not a failed write: returned inside `Ok`, so that the writer does not roll
        // back the other writes of its batch.
        let written = self
            .write(move |c| {
                let written = match expected {
                    None => c.execute(
                        &format!(
                            "INSERT INTO {table} (id, doc, version) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO NOTHING"
                        ),
                        params![id, doc, version],
                    ),
                    Some(old) => c.execute(
                        &format!("UPDATE {table} SET doc = ?2, version = ?3 WHERE id = ?1 AND version = ?4"),
                        params![id, doc, version, old],
                    ),
                };
                Ok(written.map_err(storage)? > 0)
            })
            .await?;
        let what = documents.what;
        match (written, expected) {
            (true, _) => Ok(version_of(version)),
            (false, None) => Err(StoreError::Conflict(format!("{what} {named:?} already exists"))),
            (false, Some(_)) => Err(StoreError::Conflict(format!("{what} {named:?} changed since it was read"))),
        }
    }

    /// Item `id` with its version.
    pub(super) async fn get_document<T: DeserializeOwned + Send + 'static>(
        &self,
        documents: Documents,
        id: String,
    ) -> Result<Option<(T, Version)>, StoreError> {
        self.read(move |c| {
            let query = format!("SELECT doc, version FROM {} WHERE id = ?1", documents.table);
            let row: Option<(String, i64)> =
                c.query_row(&query, [id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(storage)?;
            row.map(|(doc, version)| Ok((parse(documents.what, &doc)?, version_of(version)))).transpose()
        })
        .await
    }

    /// Every item, oldest first.
    pub(super) async fn list_documents<T: DeserializeOwned + Send + 'static>(
        &self,
        documents: Documents,
    ) -> Result<Vec<T>, StoreError> {
        self.read(move |c| {
            let query = format!("SELECT doc FROM {} ORDER BY rowid", documents.table);
            let mut statement = c.prepare_cached(&query).map_err(storage)?;
            let docs = statement.query_map([], |r| r.get::<_, String>(0)).map_err(storage)?;
            docs.map(|doc| parse(documents.what, &doc.map_err(storage)?)).collect()
        })
        .await
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn put_webhook(&self, webhook: &Webhook, expected: Option<&Version>) -> Result<Version, StoreError> {
        self.put_document(WEBHOOKS, webhook.id.to_string(), webhook, expected).await
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
        self.get_document(WEBHOOKS, id.to_string()).await
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.list_documents(WEBHOOKS).await
    }

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            // Its pending deliveries go with it: nobody is left to receive them.
            c.execute(
                "UPDATE deliveries SET status = ?2, next_attempt_at = NULL, dead_reason = 'webhook deleted'
                 WHERE webhook_id = ?1 AND next_attempt_at IS NOT NULL",
                params![id.as_str(), Status::Dead.as_str()],
            )
            .map_err(storage)?;
            Ok(c.execute("DELETE FROM webhooks WHERE id = ?1", [id.as_str()]).map_err(storage)? > 0)
        })
        .await
    }
}

#[async_trait]
impl RejectedEvents for SqliteStore {
    async fn reject(&self, rejected: &Rejected) -> Result<(), StoreError> {
        let problems = serde_json::to_string(&rejected.problems).map_err(storage)?;
        let rejected = rejected.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO rejected_events (id, received_at, problems, body) VALUES (?1, ?2, ?3, ?4)",
                params![rejected.id, rejected.received_at_ms, problems, rejected.body],
            )
            .map_err(storage)?;
            Ok(())
        })
        .await
    }

    async fn list_rejected(&self, limit: usize, before: Option<&str>) -> Result<Page<Rejected>, StoreError> {
        let before = parse_cursor(before)?;
        self.read(move |c| {
            let mut statement = c
                .prepare_cached(
                    "SELECT seq, id, received_at, problems, body FROM rejected_events WHERE seq < ?1
                     ORDER BY seq DESC LIMIT ?2",
                )
                .map_err(storage)?;
            let rows = statement
                .query_map(params![before.unwrap_or(i64::MAX), limit as i64 + 1], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get(4)?))
                })
                .map_err(storage)?;
            let mut page = Vec::new();
            for row in rows {
                let (seq, id, received_at_ms, problems, body) = row.map_err(storage)?;
                let problems = serde_json::from_str(&problems).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                page.push((seq, Rejected { id, received_at_ms, problems, body }));
            }
            Ok(cut_page(page, limit))
        })
        .await
    }
}
