//! The settings of `handler serve`, the Azure Functions custom handler: app settings, as
//! `function-app/local.settings.json.example` lists them.

use super::{boolean, disable_after, duration, encryption_key, number, required, Problems};
use crate::adapters::cosmos::{CosmosAuth, CosmosConfig};
use crate::adapters::identity::ManagedIdentity;
use crate::adapters::sealed::EncryptionKey;
use crate::adapters::servicebus::ServiceBusConnection;
use dispatcher_core::policy::retry::RetrySchedule;
use std::time::Duration;

/// Everything `handler serve` is configured with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub port: u16,
    pub cosmos: CosmosConfig,
    /// How long the webhooks read from Cosmos DB are used before they are read again.
    pub webhook_cache: Duration,
    pub service_bus: ServiceBusConnection,
    pub events_queue: String,
    pub deliveries_queue: String,
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    pub allow_private_targets: bool,
    /// How long a webhook's attempts may all fail before it is disabled; `None`: never.
    pub disable_after: Option<Duration>,
    /// Seals webhook secrets at rest, when set.
    pub encryption_key: Option<EncryptionKey>,
}

/// The settings of `handler serve` (app settings in Azure); [`ServeArgs::validate`] checks them.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The port the Functions host calls (it sets this variable).
    #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
    pub port: Option<String>,
    /// The Cosmos DB account endpoint, e.g. https://<account>.documents.azure.com:443/.
    #[arg(long, env = "COSMOSDB_ENDPOINT")]
    pub cosmos_endpoint: Option<String>,
    /// The Cosmos DB account key; without it, the managed identity's tokens.
    #[arg(long, env = "COSMOSDB_KEY", hide_env_values = true)]
    pub cosmos_key: Option<String>,
    #[arg(long, env = "COSMOSDB_DATABASE", default_value = "dispatcher")]
    pub cosmos_database: String,
    /// Create the database and containers when they are missing.
    #[arg(long, env = "COSMOSDB_CREATE_IF_MISSING", default_value = "false")]
    pub cosmos_create_if_missing: String,
    /// How many days the attempt log and rejected events are kept (the containers' TTL).
    #[arg(long, env = "DISPATCHER_RETENTION_DAYS", default_value = "30")]
    pub retention_days: String,
    /// How many seconds the webhooks read from Cosmos DB are used before they are read again.
    #[arg(long, env = "DISPATCHER_WEBHOOK_CACHE_SECONDS", default_value = "10")]
    pub webhook_cache_seconds: String,
    /// The Service Bus connection string the triggers use; the handler sends over AMQP with it.
    #[arg(long, env = "ServiceBusConnection", hide_env_values = true)]
    pub service_bus: Option<String>,
    /// Instead of a connection string: the namespace (`<ns>.servicebus.windows.net`), reached with the managed
    /// identity, as the triggers do (the Functions convention of identity-based connections).
    #[arg(long, env = "ServiceBusConnection__fullyQualifiedNamespace")]
    pub service_bus_namespace: Option<String>,
    /// The client id of a user-assigned managed identity; without it, the system-assigned one.
    #[arg(long, env = "AZURE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The queue of incoming events (`POST /api/v1/events` sends there).
    #[arg(long, env = "EVENTS_QUEUE", default_value = "events")]
    pub events_queue: String,
    /// The queue of delivery jobs (retries are re-sent there).
    #[arg(long, env = "DELIVERIES_QUEUE", default_value = "deliveries")]
    pub deliveries_queue: String,
    /// Delays between attempts; a delivery gets one attempt more than there are delays.
    #[arg(long, env = "DISPATCHER_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h")]
    pub retry_schedule: String,
    /// How long one delivery attempt may take.
    #[arg(long, env = "DISPATCHER_REQUEST_TIMEOUT", default_value = "15s")]
    pub request_timeout: String,
    /// How long a webhook's attempts may all fail (at least three of them) before it is disabled; `off`: never.
    #[arg(long, env = "DISPATCHER_DISABLE_AFTER", default_value = "5d")]
    pub disable_after: String,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses.
    #[arg(long, env = "DISPATCHER_ALLOW_PRIVATE_TARGETS", default_value = "false")]
    pub allow_private_targets: String,
    /// 32 random bytes, base64 (a Key Vault reference in Azure): webhook secrets and credentials are stored
    /// encrypted with it.
    #[arg(long, env = "DISPATCHER_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

impl ServeArgs {
    pub fn validate(self) -> Result<ServeConfig, Vec<String>> {
        let mut problems = Problems::default();
        let port = self.port.or(std::env::var("FUNCTIONS_HTTPWORKER_PORT").ok());
        let port =
            problems.check(required("FUNCTIONS_CUSTOMHANDLER_PORT", port, "the Functions host sets it").and_then(
                |text| text.parse::<u16>().map_err(|_| format!("FUNCTIONS_CUSTOMHANDLER_PORT: {text:?} is not a port")),
            ));
        let endpoint = problems.check(required("COSMOSDB_ENDPOINT", self.cosmos_endpoint, "the Cosmos DB account URL"));
        // One identity for both, so that its tokens are requested by one client.
        let identity = match (&self.cosmos_key, &self.service_bus) {
            (Some(_), Some(_)) => None,
            _ => problems.check(ManagedIdentity::new(self.client_id.filter(|id| !id.is_empty()))),
        };
        let cosmos_auth = match (self.cosmos_key.filter(|k| !k.is_empty()), &identity) {
            (Some(key), _) => Some(CosmosAuth::Key(key)),
            (None, identity) => identity.clone().map(CosmosAuth::ManagedIdentity),
        };
        let create_if_missing = problems.check(boolean("COSMOSDB_CREATE_IF_MISSING", &self.cosmos_create_if_missing));
        let retention_days =
            problems.check(number("DISPATCHER_RETENTION_DAYS", &self.retention_days, 1..=3650u32, "a number of days"));
        let cache = problems.check(number(
            "DISPATCHER_WEBHOOK_CACHE_SECONDS",
            &self.webhook_cache_seconds,
            0..=3600u64,
            "a number of seconds",
        ));
        let service_bus = problems.check(service_bus(self.service_bus, self.service_bus_namespace, identity));
        let retry_schedule = problems
            .check(self.retry_schedule.parse::<RetrySchedule>().map_err(|e| format!("DISPATCHER_RETRY_SCHEDULE: {e}")));
        let request_timeout =
            problems.check(duration("DISPATCHER_REQUEST_TIMEOUT", &self.request_timeout, Duration::from_secs(230)));
        let disable_after = problems.check(disable_after("DISPATCHER_DISABLE_AFTER", &self.disable_after));
        let allow_private_targets =
            problems.check(boolean("DISPATCHER_ALLOW_PRIVATE_TARGETS", &self.allow_private_targets));
        for (name, queue) in [("EVENTS_QUEUE", &self.events_queue), ("DELIVERIES_QUEUE", &self.deliveries_queue)] {
            if queue.is_empty() || queue.contains('/') {
                problems.add(format!("{name}: {queue:?} is not a queue name"));
            }
        }
        let encryption_key = problems.check(encryption_key(self.encryption_key));
        problems.into_result(|| {
            let cosmos = CosmosConfig {
                endpoint: endpoint?,
                auth: cosmos_auth?,
                database: self.cosmos_database,
                create_if_missing: create_if_missing?,
                retention_days: retention_days?,
            };
            Some(ServeConfig {
                port: port?,
                cosmos,
                webhook_cache: Duration::from_secs(cache?),
                service_bus: service_bus?,
                events_queue: self.events_queue,
                deliveries_queue: self.deliveries_queue,
                retry_schedule: retry_schedule?,
                request_timeout: request_timeout?,
                allow_private_targets: allow_private_targets?,
                disable_after: disable_after?,
                encryption_key: encryption_key?,
            })
        })
    }
}

/// A connection string (with a key), else the namespace reached with the managed identity.
fn service_bus(
    connection_string: Option<String>,
    namespace: Option<String>,
    identity: Option<ManagedIdentity>,
) -> Result<ServiceBusConnection, String> {
    match (connection_string.filter(|c| !c.is_empty()), namespace.filter(|n| !n.is_empty()), identity) {
        (Some(text), _, _) => ServiceBusConnection::parse(&text).map_err(|e| format!("ServiceBusConnection: {e}")),
        (None, Some(namespace), Some(identity)) => ServiceBusConnection::with_identity(&namespace, identity)
            .map_err(|e| format!("ServiceBusConnection__fullyQualifiedNamespace: {e}")),
        (None, Some(_), None) => Err("ServiceBusConnection__fullyQualifiedNamespace: no managed identity".into()),
        (None, None, _) => Err("ServiceBusConnection: missing (a connection string with a SharedAccessKey, or \
                                ServiceBusConnection__fullyQualifiedNamespace and the managed identity)"
            .into()),
    }
}
