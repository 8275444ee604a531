//! The settings of `handler serve`, the Azure Functions custom handler: app settings, as
//! `function-app/local.settings.json.example` lists them.

use super::{
    boolean, number, required, variable, Bounds, Delivery, DeliveryArgs, InvalidSettings, Problems, SettingError,
};
use crate::adapters::cosmos::{check_endpoint, CosmosAuth, CosmosConfig};
use crate::adapters::identity::ManagedIdentity;
use crate::adapters::servicebus::ServiceBusConnection;
use crate::http::ApiKey;
use std::time::Duration;

/// The port variable's name in Functions hosts before custom handlers had their own.
const OLDER_PORT_VARIABLE: &str = "FUNCTIONS_HTTPWORKER_PORT";

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
    pub delivery: Delivery,
    /// The operator's key, which the handler checks: the Api function is anonymous, so that tenants' tokens
    /// reach it. Never printed: see the `Debug` of [`ApiKey`].
    pub api_key: ApiKey,
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
    /// The operator's key, sent as `x-functions-key` (a Key Vault reference in Azure). The handler checks it:
    /// the Api function is anonymous, so that tenants' bearer tokens reach the handler.
    #[arg(long, env = "DISPATCHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

impl ServeArgs {
    /// Whether the Functions host started this process: it sets the port variable (or its older name).
    pub fn started_by_host() -> bool {
        [variable::<ServeArgs>("port").to_string(), OLDER_PORT_VARIABLE.to_owned()]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
    }

    pub fn validate(self) -> Result<ServeConfig, InvalidSettings> {
        let name = variable::<ServeArgs>;
        let mut problems = Problems::default();
        let port = self.port.or(std::env::var(OLDER_PORT_VARIABLE).ok());
        let port = problems.check(required(&name("port"), port, "the Functions host sets it")).and_then(|text| {
            problems.check_setting(&name("port"), text.parse::<u16>().map_err(|_| format!("{text:?} is not a port")))
        });
        let endpoint =
            problems.check(required(&name("cosmos_endpoint"), self.cosmos_endpoint, "the Cosmos DB account URL"));
        let endpoint = endpoint
            .and_then(|text| problems.check_setting(&name("cosmos_endpoint"), check_endpoint(&text)).map(|()| text));
        // One identity for both, so that its tokens are requested by one client.
        let identity = match (&self.cosmos_key, &self.service_bus) {
            (Some(_), Some(_)) => None,
            _ => {
                let client_id = self.client_id.filter(|id| !id.is_empty());
                let setting = name("client_id");
                let what: &dyn std::fmt::Display = if client_id.is_some() { &setting } else { &"the managed identity" };
                problems.check_setting(what, ManagedIdentity::new(client_id))
            }
        };
        let cosmos_auth = match (self.cosmos_key.filter(|k| !k.is_empty()), &identity) {
            (Some(key), _) => Some(CosmosAuth::Key(key)),
            (None, identity) => identity.clone().map(CosmosAuth::ManagedIdentity),
        };
        let create_if_missing =
            problems.check(boolean(&name("cosmos_create_if_missing"), &self.cosmos_create_if_missing));
        let cache = problems.check(number(
            &name("webhook_cache_seconds"),
            &self.webhook_cache_seconds,
            0..=3600u64,
            "a number of seconds",
        ));
        let service_bus = problems.check(service_bus(self.service_bus, self.service_bus_namespace, identity));
        // The Functions host answers an HTTP-triggered invocation within 230 s.
        let bounds = Bounds {
            max_request_timeout: Duration::from_secs(230),
            private_targets_by_default: false,
            least_grace: Duration::ZERO,
        };
        let delivery = self.delivery.validate(&mut problems, bounds);
        for (id, queue) in [("events_queue", &self.events_queue), ("deliveries_queue", &self.deliveries_queue)] {
            if queue.is_empty() || queue.contains('/') {
                problems.add(&name(id), format!("{queue:?} is not a queue name"));
            }
        }
        let api_key =
            problems.check(required(&name("api_key"), self.api_key, "the operator's key, at least 16 characters"));
        if api_key.as_ref().is_some_and(|key| key.starts_with("@Microsoft.KeyVault(")) {
            // What App Service passes on when a Key Vault reference does not resolve: never a key.
            problems.add(
                &name("api_key"),
                "is a Key Vault reference the platform could not resolve: let the app read the vault",
            );
        } else if api_key.as_ref().is_some_and(|key| key.len() < 16) {
            // Say what is wrong without repeating the key.
            problems.add(&name("api_key"), "must be at least 16 characters");
        }
        problems.into_result(|| {
            let delivery = delivery?;
            let cosmos = CosmosConfig {
                endpoint: endpoint?,
                auth: cosmos_auth?,
                database: self.cosmos_database,
                create_if_missing: create_if_missing?,
                retention_days: delivery.retention_days,
            };
            Some(ServeConfig {
                port: port?,
                cosmos,
                webhook_cache: Duration::from_secs(cache?),
                service_bus: service_bus?,
                events_queue: self.events_queue,
                deliveries_queue: self.deliveries_queue,
                delivery,
                api_key: ApiKey(api_key?),
            })
        })
    }
}

/// A connection string (with a key), else the namespace reached with the managed identity.
fn service_bus(
    connection_string: Option<String>,
    namespace: Option<String>,
    identity: Option<ManagedIdentity>,
) -> Result<ServiceBusConnection, SettingError> {
    let (by_key, by_identity) = (variable::<ServeArgs>("service_bus"), variable::<ServeArgs>("service_bus_namespace"));
    match (connection_string.filter(|c| !c.is_empty()), namespace.filter(|n| !n.is_empty()), identity) {
        (Some(text), _, _) => ServiceBusConnection::parse(&text).map_err(|e| SettingError::new(&by_key, e)),
        (None, Some(namespace), Some(identity)) => {
            ServiceBusConnection::with_identity(&namespace, identity).map_err(|e| SettingError::new(&by_identity, e))
        }
        (None, Some(_), None) => Err(SettingError::new(&by_identity, "no managed identity")),
        (None, None, _) => Err(SettingError::new(
            &by_key,
            format!("missing (a connection string with a SharedAccessKey, or {by_identity} and the managed identity)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn problems(args: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(std::iter::once("handler").chain(args.iter().copied())).unwrap();
        cli.serve
            .validate()
            .err()
            .map(|invalid| invalid.0.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_endpoint_that_is_not_an_account_url_is_named_and_never_quoted() {
        let pasted = "AccountEndpoint=https://acme.documents.azure.com:443/;AccountKey=c2VjcmV0LWtleQ==;";
        let base = [
            "--port",
            "7071",
            "--cosmos-key",
            "k",
            "--service-bus",
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
            "--api-key",
            "operator-key-0123456789",
        ];
        let found = problems(&[&base[..], &["--cosmos-endpoint", pasted]].concat());
        assert_eq!(
            found,
            ["COSMOSDB_ENDPOINT: is not a Cosmos DB account URL like https://<account>.documents.azure.com:443/"],
            "{found:?}"
        );
        assert!(
            problems(&[&base[..], &["--cosmos-endpoint", "https://acme.documents.azure.com:443/"]].concat()).is_empty()
        );
    }

    #[test]
    fn serve_needs_the_operator_key_and_never_quotes_it() {
        let base = [
            "--port",
            "7071",
            "--cosmos-key",
            "k",
            "--cosmos-endpoint",
            "https://acme.documents.azure.com:443/",
            "--service-bus",
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b",
        ];
        assert_eq!(problems(&base), ["DISPATCHER_API_KEY: missing (the operator's key, at least 16 characters)"]);
        let short = problems(&[&base[..], &["--api-key", "sesame-123"]].concat());
        assert_eq!(short, ["DISPATCHER_API_KEY: must be at least 16 characters"]);
        let unresolved = "@Microsoft.KeyVault(VaultName=acme-kv;SecretName=dispatcher-operator-key)";
        let found = problems(&[&base[..], &["--api-key", unresolved]].concat());
        assert_eq!(
            found,
            ["DISPATCHER_API_KEY: is a Key Vault reference the platform could not resolve: let the app read the vault"]
        );
    }
}
