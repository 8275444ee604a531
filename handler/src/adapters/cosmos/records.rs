//! The webhooks (one item each, the webhook whole under `webhook`) and the rejected events.

use super::query::{cut, etag_of, if_match, keyset_query, parse_cursor, point_read, query_all, with_cursor};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{Page, RejectedEvents, StoreError, WebhookStore, WebhookVersion};
use async_trait::async_trait;
use azure_data_cosmos::{FeedScope, Query};
use dispatcher_core::model::{Rejected, Webhook, WebhookId};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookDoc {
    id: String,
    webhook: Webhook,
}

/// The etag as a version, which the port wants without double quotes (Cosmos DB quotes its etags; the local
/// server does not): `%` and `"` percent-encoded, decoded again for If-Match, which must be the etag exactly.
fn version_of(etag: &str) -> WebhookVersion {
    WebhookVersion(etag.replace('%', "%25").replace('"', "%22"))
}

fn etag_of_version(version: &WebhookVersion) -> String {
    version.0.replace("%22", "\"").replace("%25", "%")
}

#[async_trait]
impl WebhookStore for CosmosStore {
    async fn put_webhook(
        &self,
        webhook: &Webhook,
        expected: Option<&WebhookVersion>,
    ) -> Result<WebhookVersion, StoreError> {
        let doc = WebhookDoc { id: webhook.id.to_string(), webhook: webhook.clone() };
        let container = &self.containers().await?.webhooks;
        let written = match expected {
            None => {
                unthrottled("creating a webhook", BUDGET, || container.create_item(doc.id.clone(), &doc.id, &doc, None))
                    .await
            }
            Some(version) => {
                let etag = etag_of_version(version);
                let replace = || container.replace_item(doc.id.clone(), &doc.id, &doc, if_match(&etag));
                unthrottled("writing a webhook", BUDGET, replace).await
            }
        };
        match written {
            Ok(response) => match etag_of(&response) {
                etag if etag.is_empty() => {
                    Err(StoreError::Corrupt(format!("webhook {:?} was written without an etag", doc.id)))
                }
                etag => Ok(version_of(&etag)),
            },
            Err(error) if expected.is_none() && error.status().is_conflict() => {
                Err(StoreError::Conflict(format!("webhook {:?} already exists", doc.id)))
            }
            Err(error) if error.status().is_precondition_failed() || error.status().is_not_found() => {
                Err(StoreError::Conflict(format!("webhook {:?} changed since it was read", doc.id)))
            }
            Err(error) => Err(cosmos("writing a webhook")(error)),
        }
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, WebhookVersion)>, StoreError> {
        let doc: Option<(WebhookDoc, _)> =
            point_read(&self.containers().await?.webhooks, id.as_str(), id.as_str(), "webhook").await?;
        match doc {
            None => Ok(None),
            Some((doc, Some(etag))) => Ok(Some((doc.webhook, version_of(&etag)))),
            Some((_, None)) => Err(StoreError::Corrupt(format!("webhook {id:?} was read without an etag"))),
        }
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

    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        let container = &self.containers().await?.webhooks;
        match unthrottled("deleting a webhook", BUDGET, || container.delete_item(id.to_string(), id.as_str(), None))
            .await
        {
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
