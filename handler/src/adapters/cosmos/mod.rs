//! The Azure store: Cosmos DB (SQL API) through the `azure_data_cosmos` SDK, connected on first use and again
//! after a failure, so that a slow or absent database never delays the handler's readiness.
//!
//! Containers: `webhooks` (partition key `/id`), `deliveries` (`/webhookId`: a webhook's attempt log is one
//! partition, read newest first), `rejected-events` (`/id`) and `rate-limits` (`/id`: each rate-limited
//! webhook's next free slot), `tenants` (`/id`) and `tokens` (`/id`: a token's id), `sources` (`/id`) and
//! `receipts` (`/id`: what the sources received); the log, the rejected events, the rate limits and the receipts
//! expire items after a TTL.
//! - `log.rs`: the delivery log, one item per delivery with its attempts, written under optimistic concurrency.
//! - `records.rs`: the webhooks and the rejected events.
//! - `tenants.rs`: the tenants and their tokens (hashes only).
//! - `sources.rs`: the inbound sources and their receipts.
//! - `rate_limits.rs`: the webhooks' rate limits, held across instances.
//! - `query.rs`: queries, point reads, and pages cut by keyset (time, then id, newest first).
//! - `throttle.rs`: every request waits out Cosmos DB's throttling (429) as the service asks, within a budget.

mod log;
mod query;
mod rate_limits;
mod records;
mod sources;
mod tenants;
mod throttle;

use crate::adapters::identity::ManagedIdentity;
use crate::ports::StoreError;
use azure_data_cosmos::clients::ContainerClient;
use azure_data_cosmos::models::{
    CompositeIndex, CompositeIndexOrder, CompositeIndexProperty, ContainerProperties, IndexingMode, IndexingPolicy,
    TimeToLive,
};
use azure_data_cosmos::options::{
    BinaryEncodingOptions, ConnectionPoolOptions, OperationOptionsBuilder, ThrottlingRetryOptionsBuilder,
};
use azure_data_cosmos::{AccountEndpoint, AccountReference, CosmosClient, CosmosRuntime, RoutingStrategy};

/// Where the store lives and how it is set up (app settings `COSMOSDB_*`).
#[derive(Clone)]
pub struct CosmosConfig {
    pub endpoint: String,
    pub auth: CosmosAuth,
    pub database: String,
    /// Create the database and containers when they are missing.
    pub create_if_missing: bool,
    /// How long the attempt log and rejected events are kept.
    pub retention_days: u32,
}

/// How the handler proves it may read and write: the account key, or the managed identity's tokens (with a
/// Cosmos DB data-plane role, "Built-in Data Contributor").
#[derive(Clone)]
pub enum CosmosAuth {
    /// The account key. Never printed: see `Debug`.
    Key(String),
    ManagedIdentity(ManagedIdentity),
}

impl std::fmt::Debug for CosmosAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CosmosAuth::Key(_) => f.write_str("key ***"),
            CosmosAuth::ManagedIdentity(identity) => write!(f, "managed identity {identity:?}"),
        }
    }
}

impl std::fmt::Debug for CosmosConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosConfig")
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("database", &self.database)
            .field("create_if_missing", &self.create_if_missing)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

/// The store, connected on first use.
pub struct CosmosStore {
    config: CosmosConfig,
    containers: tokio::sync::OnceCell<Containers>,
}

/// The containers of a connected store.
struct Containers {
    webhooks: ContainerClient,
    deliveries: ContainerClient,
    rejected: ContainerClient,
    rate_limits: ContainerClient,
    tenants: ContainerClient,
    tokens: ContainerClient,
    sources: ContainerClient,
    receipts: ContainerClient,
}

fn cosmos(context: &str) -> impl Fn(azure_data_cosmos::CosmosError) -> StoreError + '_ {
    move |error| StoreError::Storage(format!("Cosmos DB, {context}: {error}"))
}

impl CosmosStore {
    /// The store of `config`; nothing is connected until it is first used.
    pub fn new(config: CosmosConfig) -> CosmosStore {
        CosmosStore { config, containers: tokio::sync::OnceCell::new() }
    }

    /// The containers, connecting first when no attempt has succeeded yet.
    async fn containers(&self) -> Result<&Containers, StoreError> {
        self.containers.get_or_try_init(|| connect(&self.config)).await
    }
}

/// An endpoint that is not an account URL; its words never quote it (a connection string pasted there would
/// carry the account key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a Cosmos DB account URL like https://<account>.documents.azure.com:443/")]
pub struct NotAnEndpoint;

/// Checks an account endpoint before anything connects to it.
pub fn check_endpoint(text: &str) -> Result<(), NotAnEndpoint> {
    text.parse::<AccountEndpoint>().map_err(|_| NotAnEndpoint)?;
    let url = azure_core::http::Url::parse(text).map_err(|_| NotAnEndpoint)?;
    match url.scheme() {
        "https" | "http" if url.host_str().is_some() && url.password().is_none() => Ok(()),
        _ => Err(NotAnEndpoint),
    }
}

async fn connect(config: &CosmosConfig) -> Result<Containers, StoreError> {
    let endpoint: AccountEndpoint =
        config.endpoint.parse().map_err(|_| StoreError::Storage(format!("the Cosmos DB endpoint {NotAnEndpoint}")))?;
    crate::adapters::tls::install();
    let account = match &config.auth {
        CosmosAuth::Key(key) => AccountReference::with_authentication_key(endpoint, key.clone()),
        CosmosAuth::ManagedIdentity(identity) => AccountReference::with_credential(endpoint, identity.credential()),
    };
    // Throttled requests are tried again by `throttle.rs`, which logs each wait, not by the SDK.
    let no_throttle_retries = ThrottlingRetryOptionsBuilder::new().with_max_retry_count(0).build();
    let mut builder = CosmosClient::builder()
        // JSON on the wire: what every Cosmos-compatible server speaks.
        .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false))
        .with_default_operation_options(
            OperationOptionsBuilder::new().with_throttling_retry_options(no_throttle_retries).build(),
        );
    if config.endpoint.starts_with("http://") {
        // Plain HTTP is only ever a local server (Azure is HTTPS), and those speak HTTP/1.1.
        let pool = ConnectionPoolOptions::builder().with_is_http2_allowed(false).build().map_err(cosmos("options"))?;
        let runtime =
            CosmosRuntime::builder().with_connection_pool(pool).build().await.map_err(cosmos("starting the client"))?;
        builder = builder.with_runtime(runtime);
    }
    let client =
        builder.build(account, RoutingStrategy::PreferredRegions(Vec::new())).await.map_err(cosmos("connecting"))?;
    if config.create_if_missing {
        create_missing(&client, config).await?;
    }
    let database = client.database_client(config.database.as_str());
    let container = |name: &'static str| {
        let database = &database;
        async move { database.container_client(name, None).await.map_err(cosmos(name)) }
    };
    Ok(Containers {
        webhooks: container("webhooks").await?,
        deliveries: container("deliveries").await?,
        rejected: container("rejected-events").await?,
        rate_limits: container("rate-limits").await?,
        tenants: container("tenants").await?,
        tokens: container("tokens").await?,
        sources: container("sources").await?,
        receipts: container("receipts").await?,
    })
}

/// A container the store needs, as `COSMOSDB_CREATE_IF_MISSING` creates it and `infra/main.bicep` declares it.
pub struct ContainerSpec {
    pub name: &'static str,
    pub partition_key: &'static str,
    /// Whether items expire `DISPATCHER_RETENTION_DAYS` after their last write (the container's default TTL).
    pub expires: bool,
    /// The time field pages sort by, newest first: a composite index (it, then `/id`, both descending).
    pub newest_first_by: Option<&'static str>,
}

pub const CONTAINERS: [ContainerSpec; 8] = [
    ContainerSpec { name: "webhooks", partition_key: "/id", expires: false, newest_first_by: None },
    ContainerSpec {
        name: "deliveries",
        partition_key: "/webhookId",
        expires: true,
        newest_first_by: Some("/createdAtMs"),
    },
    ContainerSpec {
        name: "rejected-events",
        partition_key: "/id",
        expires: true,
        newest_first_by: Some("/receivedAtMs"),
    },
    ContainerSpec { name: "rate-limits", partition_key: "/id", expires: true, newest_first_by: None },
    ContainerSpec { name: "tenants", partition_key: "/id", expires: false, newest_first_by: None },
    ContainerSpec { name: "tokens", partition_key: "/id", expires: false, newest_first_by: None },
    ContainerSpec { name: "sources", partition_key: "/id", expires: false, newest_first_by: None },
    // Each receipt says its own `ttl` (the de-duplication window); a container TTL lets it.
    ContainerSpec { name: "receipts", partition_key: "/id", expires: true, newest_first_by: None },
];

async fn create_missing(client: &CosmosClient, config: &CosmosConfig) -> Result<(), StoreError> {
    if let Err(error) = client.create_database(&config.database, None).await {
        if !error.status().is_conflict() {
            return Err(cosmos("creating the database")(error));
        }
    }
    let database = client.database_client(config.database.as_str());
    for container in &CONTAINERS {
        let mut properties = ContainerProperties::new(container.name, container.partition_key.into());
        properties.default_ttl = match container.expires {
            true => TimeToLive::Seconds(config.retention_days.saturating_mul(86_400)),
            false => TimeToLive::Forever,
        };
        if let Some(time_path) = container.newest_first_by {
            properties = properties.with_indexing_policy(newest_first(time_path));
        }
        if let Err(error) = database.create_container(properties, None).await {
            if !error.status().is_conflict() {
                return Err(cosmos(container.name)(error));
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
