//! The webhooks (one item each, the webhook whole under `webhook`) and the rejected events.

use super::query::{cut, etag_of, if_match, keyset_query, parse_cursor, point_read, query_all, with_cursor};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{Page, RejectedEvents, StoreError, Version, WebhookStore};
use async_trait::async_trait;
use azure_data_cosmos::clients::ContainerClient;
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
pub(super) fn version_of(etag: &str) -> Version {
    Version(etag.replace('%', "%25").replace('"', "%22"))
}

fn etag_of_version(version: &Version) -> String {
    version.0.replace("%22", "\"").replace("%25", "%")
}

/// Creates item `id` (of partition `id`) when `expected` is `None`, else replaces it if its etag is still
/// `expected`: the port's conditional write, for webhooks and tenants alike (`what` names them).
pub(super) async fn put_versioned<T: Serialize + Send + Sync>(
    container: &ContainerClient,
    id: &str,
    doc: &T,
    expected: Option<&Version>,
    what: &str,
) -> Result<Version, StoreError> {
    let written = match expected {
        None => {
            unthrottled(&format!("creating a {what}"), BUDGET, || container.create_item(id.to_owned(), id, doc, None))
                .await
        }
        Some(version) => {
            let etag = etag_of_version(version);
            let replace = || container.replace_item(id.to_owned(), id, doc, if_match(&etag));
            unthrottled(&format!("writing a {what}"), BUDGET, replace).await
        }
    };
    match written {
        Ok(response) => match etag_of(&response) {
            etag if etag.is_empty() => Err(StoreError::Corrupt(format!("{what} {id:?} was written without an etag"))),
            etag => Ok(version_of(&etag)),
        },
        Err(error) if expected.is_none() && error.status().is_conflict() => {
            Err(StoreError::Conflict(format!("{what} {id:?} already exists")))
        }
        Err(error) if error.status().is_precondition_failed() || error.status().is_not_found() => {
            Err(StoreError::Conflict(format!("{what} {id:?} changed since it was read")))
        }
        Err(error) => Err(cosmos(&format!("writing a {what}"))(error)),
    }
}

/// Item `id` (of partition `id`) with its version; `what` names it in errors.
pub(super) async fn get_versioned<T: serde::de::DeserializeOwned>(
    container: &ContainerClient,
    id: &str,
    what: &str,
) -> Result<Option<(T, Version)>, StoreError> {
    match point_read::<T>(container, id, id, what).await? {
        None => Ok(None),
        Some((doc, Some(etag))) => Ok(Some((doc, version_of(&etag)))),
        Some((_, None)) => Err(StoreError::Corrupt(format!("{what} {id:?} was read without an etag"))),
    }
}

/// Deletes item `id` (of partition `id`); whether there was one.
pub(super) async fn delete_point(container: &ContainerClient, id: &str, what: &str) -> Result<bool, StoreError> {
    let context = format!("deleting a {what}");
    match unthrottled(&context, BUDGET, || container.delete_item(id.to_owned(), id, None)).await {
        Ok(_) => Ok(true),
        Err(error) if error.status().is_not_found() => Ok(false),
        Err(error) => Err(cosmos(&context)(error)),
    }
}

#[async_trait]
impl WebhookStore for CosmosStore {
    async fn put_webhook(&self, webhook: &Webhook, expected: Option<&Version>) -> Result<Version, StoreError> {
        let doc = WebhookDoc { id: webhook.id.to_string(), webhook: webhook.clone() };
        put_versioned(&self.containers().await?.webhooks, &doc.id, &doc, expected, "webhook").await
    }

    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
        let doc = get_versioned::<WebhookDoc>(&self.containers().await?.webhooks, id.as_str(), "webhook").await?;
        Ok(doc.map(|(doc, version)| (doc.webhook, version)))
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
        delete_point(&self.containers().await?.webhooks, id.as_str(), "webhook").await
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
        Ok(cut(docs, limit, |d| (d.received_at_ms, d.id.clone())))
    }
}
