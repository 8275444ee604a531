//! The Azure store: Cosmos DB (SQL API) through the `azure_data_cosmos` SDK.
//!
//! Containers: `webhooks` (partition key `/id`), `deliveries` (`/webhookId`: a webhook's attempt log is one
//! partition, read newest first) and `rejected-events` (`/id`); the last two expire items after a TTL.
//! Pages are cut by keyset (`createdAtMs`, then `id`, newest first), so a cursor is `"{ms}:{id}"`.

use super::{
    DeliveryLog, DeliveryRecord, LogKey, NewDelivery, Next, PageResult, Rejected, RejectedEvents, Status, StoreError,
    StoredWebhook, Webhooks,
};
use crate::delivery::sender::AttemptRecord;
use crate::dispatch::DeliveryId;
use crate::validation::Problem;
use async_trait::async_trait;
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{
    CompositeIndex, CompositeIndexOrder, CompositeIndexProperty, ContainerProperties, IndexingMode, IndexingPolicy,
    TimeToLive,
};
use azure_data_cosmos::options::{BinaryEncodingOptions, ConnectionPoolOptions};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, CosmosClient, CosmosRuntime, FeedScope, Query, RoutingStrategy,
};
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where the store lives and how it is set up (app settings `COSMOSDB_*`).
#[derive(Clone)]
pub struct CosmosConfig {
    pub endpoint: String,
    /// The account key. Never printed: see `Debug`.
    pub key: String,
    pub database: String,
    /// Create the database and containers when they are missing.
    pub create_if_missing: bool,
    /// How long the attempt log and rejected events are kept.
    pub retention_days: u32,
}

impl std::fmt::Debug for CosmosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosConfig")
            .field("endpoint", &self.endpoint)
            .field("key", &"***")
            .field("database", &self.database)
            .field("create_if_missing", &self.create_if_missing)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

pub struct CosmosStore {
    webhooks: ContainerClient,
    deliveries: ContainerClient,
    rejected: ContainerClient,
}

fn cosmos(context: &str) -> impl Fn(azure_data_cosmos::CosmosError) -> StoreError + '_ {
    move |error| StoreError::Storage(format!("Cosmos DB, {context}: {error}"))
}

impl CosmosStore {
    pub async fn connect(config: &CosmosConfig) -> Result<CosmosStore, StoreError> {
        let endpoint: AccountEndpoint = config.endpoint.parse().map_err(|e| {
            StoreError::Storage(format!("COSMOSDB_ENDPOINT: {:?} is not an endpoint: {e}", config.endpoint))
        })?;
        let account = AccountReference::with_authentication_key(endpoint, config.key.clone());
        crate::http_client::install_tls();
        let mut builder = CosmosClient::builder()
            // JSON on the wire: what every Cosmos-compatible server speaks.
            .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false));
        if config.endpoint.starts_with("http://") {
            // Plain HTTP is only ever a local server (Azure is HTTPS), and those speak HTTP/1.1.
            let pool =
                ConnectionPoolOptions::builder().with_is_http2_allowed(false).build().map_err(cosmos("options"))?;
            let runtime = CosmosRuntime::builder()
                .with_connection_pool(pool)
                .build()
                .await
                .map_err(cosmos("starting the client"))?;
            builder = builder.with_runtime(runtime);
        }
        let client = builder
            .build(account, RoutingStrategy::PreferredRegions(Vec::new()))
            .await
            .map_err(cosmos("connecting"))?;
        if config.create_if_missing {
            create_missing(&client, config).await?;
        }
        let database = client.database_client(config.database.as_str());
        let container = |name: &'static str| {
            let database = &database;
            async move { database.container_client(name, None).await.map_err(cosmos(name)) }
        };
        Ok(CosmosStore {
            webhooks: container("webhooks").await?,
            deliveries: container("deliveries").await?,
            rejected: container("rejected-events").await?,
        })
    }
}

async fn create_missing(client: &CosmosClient, config: &CosmosConfig) -> Result<(), StoreError> {
    if let Err(error) = client.create_database(&config.database, None).await {
        if !error.status().is_conflict() {
            return Err(cosmos("creating the database")(error));
        }
    }
    let database = client.database_client(config.database.as_str());
    let retention = || TimeToLive::Seconds(config.retention_days.saturating_mul(86_400));
    for (name, key, ttl, newest_first_by) in [
        ("webhooks", "/id", TimeToLive::Forever, None),
        ("deliveries", "/webhookId", retention(), Some("/createdAtMs")),
        ("rejected-events", "/id", retention(), Some("/receivedAtMs")),
    ] {
        let mut properties = ContainerProperties::new(name, key.into());
        properties.default_ttl = ttl;
        if let Some(time_path) = newest_first_by {
            properties = properties.with_indexing_policy(newest_first(time_path));
        }
        if let Err(error) = database.create_container(properties, None).await {
            if !error.status().is_conflict() {
                return Err(cosmos(name)(error));
            }
        }
    }
    Ok(())
}

/// Every path indexed, plus the composite index that pages newest first (time, then id, both descending)
/// need: Cosmos refuses an ORDER BY on two fields without one.
fn newest_first(time_path: &str) -> IndexingPolicy {
    let mut policy = IndexingPolicy::default().with_indexing_mode(IndexingMode::Consistent).with_included_path("/*");
    policy.automatic = true;
    policy.with_composite_index(
        CompositeIndex::default()
            .with_property(CompositeIndexProperty::new(time_path.to_owned(), CompositeIndexOrder::Descending))
            .with_property(CompositeIndexProperty::new("/id", CompositeIndexOrder::Descending)),
    )
}

/// All items a query yields.
async fn query_all<T: DeserializeOwned + Send + 'static>(
    container: &ContainerClient,
    query: Query,
    scope: FeedScope,
    context: &str,
) -> Result<Vec<T>, StoreError> {
    let items = container.query_items::<T>(query, scope, None).await.map_err(cosmos(context))?;
    items.try_collect().await.map_err(cosmos(context))
}

/// The item `id` of `partition`, or `None` when there is none; `what` names it in errors ("webhook").
async fn point_read<T: DeserializeOwned>(
    container: &ContainerClient,
    partition: &str,
    id: &str,
    what: &str,
) -> Result<Option<T>, StoreError> {
    match container.read_item(partition.to_owned(), id, None).await {
        Ok(response) => response.into_model().map(Some).map_err(|e| StoreError::Corrupt(format!("{what} {id:?}: {e}"))),
        Err(error) if error.status().is_not_found() => Ok(None),
        Err(error) => Err(cosmos(&format!("reading a {what}"))(error)),
    }
}

fn parameter<V: Serialize>(query: Query, name: &str, value: V) -> Result<Query, StoreError> {
    query.with_parameter(name, value).map_err(|e| StoreError::Storage(format!("query parameter {name}: {e}")))
}

/// `"{ms}:{id}"`: the position after which the next page starts.
fn parse_cursor(cursor: Option<&str>) -> Result<Option<(i64, String)>, StoreError> {
    cursor
        .map(|text| {
            text.split_once(':')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
                .ok_or_else(|| StoreError::BadCursor(text.to_owned()))
        })
        .transpose()
}

/// Newest first after the cursor; `limit + 1` fetched to know whether there is a next page.
fn keyset_query(select: &str, filter: &str, time_field: &str, limit: usize, after: &Option<(i64, String)>) -> String {
    let mut conditions: Vec<String> = Vec::new();
    if !filter.is_empty() {
        conditions.push(filter.to_owned());
    }
    if after.is_some() {
        conditions.push(format!("(c.{time_field} < @ms OR (c.{time_field} = @ms AND c.id < @id))"));
    }
    let r#where = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
    format!("SELECT TOP {} {select} FROM c{where} ORDER BY c.{time_field} DESC, c.id DESC", limit + 1)
}

fn with_cursor(mut query: Query, after: &Option<(i64, String)>) -> Result<Query, StoreError> {
    if let Some((ms, id)) = after {
        query = parameter(query, "@ms", ms)?;
        query = parameter(query, "@id", id)?;
    }
    Ok(query)
}

fn cut<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let next = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(&key)
    });
    (items, next.flatten())
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookDoc {
    id: String,
    webhook: StoredWebhook,
}

#[async_trait]
impl Webhooks for CosmosStore {
    async fn put_webhook(&self, webhook: &StoredWebhook) -> Result<(), StoreError> {
        let doc = WebhookDoc { id: webhook.id.to_string(), webhook: webhook.clone() };
        self.webhooks.upsert_item(doc.id.clone(), &doc.id, &doc, None).await.map_err(cosmos("writing a webhook"))?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<StoredWebhook>, StoreError> {
        let doc: Option<WebhookDoc> = point_read(&self.webhooks, id, id, "webhook").await?;
        Ok(doc.map(|doc| doc.webhook))
    }

    async fn list_webhooks(&self) -> Result<Vec<StoredWebhook>, StoreError> {
        let docs: Vec<WebhookDoc> =
            query_all(&self.webhooks, Query::from("SELECT * FROM c"), FeedScope::full_container(), "listing webhooks")
                .await?;
        let mut webhooks: Vec<StoredWebhook> = docs.into_iter().map(|d| d.webhook).collect();
        webhooks.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(webhooks)
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        match self.webhooks.delete_item(id.to_owned(), id, None).await {
            Ok(_) => Ok(true),
            Err(error) if error.status().is_not_found() => Ok(false),
            Err(error) => Err(cosmos("deleting a webhook")(error)),
        }
    }
}

/// A delivery and its attempts, as one item of the `deliveries` container.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDoc {
    id: DeliveryId,
    webhook_id: String,
    event: String,
    status: Status,
    /// The exact body, as text: a JSON value could come back with other spacing or escapes.
    body: String,
    source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_attempt_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dead_reason: Option<String>,
    #[serde(default)]
    attempts: Vec<AttemptRecord>,
}

impl DeliveryDoc {
    fn record(self) -> Result<DeliveryRecord, StoreError> {
        let payload = serde_json::value::RawValue::from_string(self.body)
            .map_err(|e| StoreError::Corrupt(format!("delivery {}: body: {e}", self.id)))?;
        Ok(DeliveryRecord {
            id: self.id,
            webhook_id: self.webhook_id,
            event: self.event,
            status: self.status,
            payload,
            source_id: self.source_id,
            correlation_id: self.correlation_id,
            created_at_ms: self.created_at_ms,
            next_attempt_at_ms: self.next_attempt_at_ms,
            dead_reason: self.dead_reason,
            attempts: self.attempts,
        })
    }
}

impl CosmosStore {
    async fn delivery_doc(&self, id: DeliveryId) -> Result<Option<DeliveryDoc>, StoreError> {
        let query = parameter(Query::from("SELECT * FROM c WHERE c.id = @id"), "@id", id.as_str())?;
        let docs: Vec<DeliveryDoc> =
            query_all(&self.deliveries, query, FeedScope::full_container(), "reading a delivery").await?;
        Ok(docs.into_iter().next())
    }

    /// The delivery `key`, read from its webhook's partition.
    async fn delivery_doc_of(&self, key: LogKey<'_>) -> Result<Option<DeliveryDoc>, StoreError> {
        point_read(&self.deliveries, key.webhook_id, key.id.as_str(), "delivery").await
    }

    /// Writes `doc` back with what comes next for it.
    async fn settle(&self, mut doc: DeliveryDoc, next: Next, what: &'static str) -> Result<bool, StoreError> {
        (doc.status, doc.next_attempt_at_ms, doc.dead_reason) = next.columns();
        self.deliveries
            .replace_item(doc.webhook_id.clone(), doc.id.as_str(), &doc, None)
            .await
            .map_err(cosmos(what))?;
        Ok(true)
    }
}

#[async_trait]
impl DeliveryLog for CosmosStore {
    async fn get_delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        self.delivery_doc(id).await?.map(DeliveryDoc::record).transpose()
    }

    async fn list_deliveries(
        &self,
        webhook_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> PageResult<DeliveryRecord> {
        let after = parse_cursor(cursor)?;
        // The partition key in the WHERE clause too: TOP then applies within the partition even on servers that
        // scope a query by the clause rather than by the partition key header (the local test server).
        let text = keyset_query("*", "c.webhookId = @webhook", "createdAtMs", limit, &after);
        let query = parameter(Query::from(text), "@webhook", webhook_id)?;
        let docs: Vec<DeliveryDoc> = query_all(
            &self.deliveries,
            with_cursor(query, &after)?,
            FeedScope::partition(webhook_id.to_owned()),
            "listing deliveries",
        )
        .await?;
        let (docs, next) = cut(docs, limit, |d| format!("{}:{}", d.created_at_ms, d.id));
        Ok((docs.into_iter().map(DeliveryDoc::record).collect::<Result<_, _>>()?, next))
    }

    async fn log_delivery(&self, delivery: &NewDelivery, now_ms: i64) -> Result<(), StoreError> {
        let doc = DeliveryDoc {
            id: delivery.id,
            webhook_id: delivery.webhook_id.to_string(),
            event: delivery.event.clone(),
            status: Status::Pending,
            body: String::from_utf8_lossy(&delivery.body).into_owned(),
            source_id: delivery.source_id.clone(),
            correlation_id: delivery.correlation_id.clone(),
            created_at_ms: now_ms,
            next_attempt_at_ms: None,
            dead_reason: None,
            attempts: Vec::new(),
        };
        match self.deliveries.create_item(doc.webhook_id.clone(), doc.id.as_str(), &doc, None).await {
            Ok(_) => Ok(()),
            // Logged before: a redelivered message.
            Err(error) if error.status().is_conflict() => Ok(()),
            Err(error) => Err(cosmos("logging a delivery")(error)),
        }
    }

    async fn log_attempt(
        &self,
        key: LogKey<'_>,
        n: u32,
        attempt: AttemptRecord,
        next: Next,
    ) -> Result<bool, StoreError> {
        let Some(mut doc) = self.delivery_doc_of(key).await? else { return Ok(false) };
        let index = (n.max(1) - 1) as usize;
        if index < doc.attempts.len() {
            doc.attempts[index] = attempt;
            doc.attempts.truncate(index + 1);
        } else {
            doc.attempts.push(attempt);
        }
        self.settle(doc, next, "logging an attempt").await
    }

    async fn give_up(&self, key: LogKey<'_>, reason: &str) -> Result<bool, StoreError> {
        let Some(doc) = self.delivery_doc_of(key).await? else { return Ok(false) };
        self.settle(doc, Next::Dead { reason: reason.to_owned() }, "ending a delivery").await
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RejectedDoc {
    id: String,
    received_at_ms: i64,
    problems: Vec<Problem>,
    body: String,
}

#[async_trait]
impl RejectedEvents for CosmosStore {
    async fn reject(&self, rejected: Rejected) -> Result<(), StoreError> {
        let doc = RejectedDoc {
            id: rejected.id,
            received_at_ms: rejected.received_at_ms,
            problems: rejected.problems,
            body: rejected.body,
        };
        self.rejected
            .upsert_item(doc.id.clone(), &doc.id, &doc, None)
            .await
            .map_err(cosmos("recording a rejected event"))?;
        Ok(())
    }

    async fn list_rejected(&self, limit: usize, cursor: Option<&str>) -> PageResult<Rejected> {
        let after = parse_cursor(cursor)?;
        let text = keyset_query("*", "", "receivedAtMs", limit, &after);
        let docs: Vec<RejectedDoc> = query_all(
            &self.rejected,
            with_cursor(Query::from(text), &after)?,
            FeedScope::full_container(),
            "listing rejected events",
        )
        .await?;
        let (docs, next) = cut(docs, limit, |d| format!("{}:{}", d.received_at_ms, d.id));
        let items = docs
            .into_iter()
            .map(|d| Rejected { id: d.id, received_at_ms: d.received_at_ms, problems: d.problems, body: d.body })
            .collect();
        Ok((items, next))
    }
}
