//! The webhooks (one item each, the webhook whole under `webhook`) and the rejected events.

use super::query::{cut, keyset_query, parse_cursor, point_read, query_all, with_cursor};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{Page, RejectedEvents, StoreError, WebhookStore};
use async_trait::async_trait;
use azure_data_cosmos::{FeedScope, Query};
use dispatcher_core::model::{Rejected, Webhook};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookDoc {
    id: String,
    webhook: Webhook,
}

#[async_trait]
impl WebhookStore for CosmosStore {
    async fn put_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let doc = WebhookDoc { id: webhook.id.to_string(), webhook: webhook.clone() };
        let container = &self.containers().await?.webhooks;
        let upsert = || container.upsert_item(doc.id.clone(), &doc.id, &doc, None);
        unthrottled("writing a webhook", BUDGET, upsert).await.map_err(cosmos("writing a webhook"))?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        let doc: Option<(WebhookDoc, _)> = point_read(&self.containers().await?.webhooks, id, id, "webhook").await?;
        Ok(doc.map(|(doc, _)| doc.webhook))
    }

    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let container = &self.containers().await?.webhooks;
        let query = Query::from("SELECT * FROM c");
        let docs: Vec<WebhookDoc> =
            query_all(container, query, FeedScope::full_container(), "listing webhooks").await?;
        let mut webhooks: Vec<Webhook> = docs.into_iter().map(|d| d.webhook).collect();
        webhooks.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(webhooks)
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let container = &self.containers().await?.webhooks;
        match unthrottled("deleting a webhook", BUDGET, || container.delete_item(id.to_owned(), id, None)).await {
            Ok(_) => Ok(true),
            Err(error) if error.status().is_not_found() => Ok(false),
            Err(error) => Err(cosmos("deleting a webhook")(error)),
        }
    }
}

#[async_trait]
impl RejectedEvents for CosmosStore {
    async fn reject(&self, rejected: &Rejected) -> Result<(), StoreError> {
        let container = &self.containers().await?.rejected;
        let upsert = || container.upsert_item(rejected.id.clone(), &rejected.id, rejected, None);
        unthrottled("recording a rejected event", BUDGET, upsert)
            .await
            .map_err(cosmos("recording a rejected event"))?;
        Ok(())
    }

    async fn list_rejected(&self, limit: usize, cursor: Option<&str>) -> Result<Page<Rejected>, StoreError> {
        let after = parse_cursor(cursor)?;
        let text = keyset_query("*", "", "receivedAtMs", limit, &after);
        let docs: Vec<Rejected> = query_all(
            &self.containers().await?.rejected,
            with_cursor(Query::from(text), &after)?,
            FeedScope::full_container(),
            "listing rejected events",
        )
        .await?;
        Ok(cut(docs, limit, |d| format!("{}:{}", d.received_at_ms, d.id)))
    }
}
