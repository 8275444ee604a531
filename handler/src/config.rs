//! The settings of `handler local` and `handler serve`: flags, each also read from an environment variable
//! (an app setting in Azure), validated together so that every problem is reported at once. Secrets are never
//! printed.

use crate::delivery::retry::RetrySchedule;
use crate::functions::serve::ServeConfig;
use crate::functions::servicebus::ServiceBusConnection;
use crate::local::{ApiKey, LocalConfig};
use crate::store::cosmos::CosmosConfig;
use std::path::PathBuf;
use std::time::Duration;

/// The flags of `handler local`, as text; [`LocalArgs::validate`] turns them into a [`LocalConfig`].
#[derive(Debug, Clone, clap::Args)]
pub struct LocalArgs {
    /// Address the API listens on.
    #[arg(long, env = "DISPATCHER_BIND", default_value = "127.0.0.1")]
    pub bind: String,
    /// Port the API listens on (0: any free port, printed at start).
    #[arg(long, env = "DISPATCHER_PORT", default_value = "7071")]
    pub port: String,
    /// Where the SQLite file (queue and store) lives.
    #[arg(long, env = "DISPATCHER_DATA_DIR", default_value = "./.dispatcher")]
    pub data_dir: PathBuf,
    /// A JSON array of webhooks in the original configuration shape, upserted at start.
    #[arg(long, env = "DISPATCHER_WEBHOOKS_FILE")]
    pub webhooks: Option<PathBuf>,
    /// How many deliveries may be in flight at once.
    #[arg(long, env = "DISPATCHER_CONCURRENCY", default_value = "64")]
    pub concurrency: String,
    /// Delays between attempts; a delivery gets one attempt more than there are delays.
    #[arg(long, env = "DISPATCHER_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h")]
    pub retry_schedule: String,
    /// How long one delivery attempt may take.
    #[arg(long, env = "DISPATCHER_REQUEST_TIMEOUT", default_value = "15s")]
    pub request_timeout: String,
    /// On SIGINT/SIGTERM, how long in-flight deliveries may take to finish.
    #[arg(long, env = "DISPATCHER_SHUTDOWN_GRACE", default_value = "10s")]
    pub shutdown_grace: String,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses.
    #[arg(long, env = "DISPATCHER_ALLOW_PRIVATE_TARGETS", default_value = "true")]
    pub allow_private_targets: String,
    /// When set, every API call needs it in the `x-functions-key` header.
    #[arg(long, env = "DISPATCHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl LocalArgs {
    pub fn validate(self) -> Result<LocalConfig, Vec<String>> {
        let mut problems = Problems::default();
        let bind = problems.check(
            self.bind.parse().map_err(|_| format!("--bind / DISPATCHER_BIND: {:?} is not an IP address", self.bind)),
        );
        let port = problems.check(
            self.port
                .parse::<u16>()
                .map_err(|_| format!("--port / DISPATCHER_PORT: {:?} is not a port number (0-65535)", self.port)),
        );
        let concurrency =
            problems.check(number("--concurrency / DISPATCHER_CONCURRENCY", &self.concurrency, 1..=4096, "a number"));
        let retry_schedule = problems.check(
            self.retry_schedule
                .parse::<RetrySchedule>()
                .map_err(|e| format!("--retry-schedule / DISPATCHER_RETRY_SCHEDULE: {e}")),
        );
        let request_timeout = problems.check(duration(
            "--request-timeout / DISPATCHER_REQUEST_TIMEOUT",
            &self.request_timeout,
            Duration::from_secs(300),
        ));
        let shutdown_grace = problems.check(duration(
            "--shutdown-grace / DISPATCHER_SHUTDOWN_GRACE",
            &self.shutdown_grace,
            Duration::from_secs(600),
        ));
        let allow_private_targets = problems
            .check(boolean("--allow-private-targets / DISPATCHER_ALLOW_PRIVATE_TARGETS", &self.allow_private_targets));
        if self.api_key.as_ref().is_some_and(|key| key.len() < 16) {
            // Say what is wrong without repeating the key.
            problems.add("DISPATCHER_API_KEY: must be at least 16 characters".to_owned());
        }
        match (bind, port, concurrency, retry_schedule, request_timeout, shutdown_grace, allow_private_targets) {
            (
                Some(bind),
                Some(port),
                Some(concurrency),
                Some(retry_schedule),
                Some(request_timeout),
                Some(shutdown_grace),
                Some(allow),
            ) if problems.0.is_empty() => Ok(LocalConfig {
                bind,
                port,
                data_dir: self.data_dir,
                webhooks_file: self.webhooks,
                concurrency,
                retry_schedule,
                request_timeout,
                api_key: self.api_key.map(ApiKey),
                allow_private_targets: allow,
                shutdown_grace,
            }),
            _ => Err(problems.0),
        }
    }
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
    /// The Cosmos DB account key.
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
    /// The Service Bus connection string the triggers use; the handler sends through its REST API with it.
    #[arg(long, env = "ServiceBusConnection", hide_env_values = true)]
    pub service_bus: Option<String>,
    /// The queue of incoming events (`POST /api/v1/events` sends there).
    #[arg(long, env = "EVENTS_QUEUE", default_value = "events")]
    pub events_queue: String,
    /// The queue of delivery jobs (retries are re-sent there).
    #[arg(long, env = "DELIVERIES_QUEUE", default_value = "deliveries")]
    pub deliveries_queue: String,
    /// Send the Service Bus REST calls to this base URL instead of https://<namespace>.servicebus.windows.net
    /// (a stand-in of Service Bus, for tests).
    #[arg(long, env = "DISPATCHER_SERVICEBUS_REST_URL", hide = true)]
    pub service_bus_rest_url: Option<String>,
    /// Delays between attempts; a delivery gets one attempt more than there are delays.
    #[arg(long, env = "DISPATCHER_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h")]
    pub retry_schedule: String,
    /// How long one delivery attempt may take.
    #[arg(long, env = "DISPATCHER_REQUEST_TIMEOUT", default_value = "15s")]
    pub request_timeout: String,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses.
    #[arg(long, env = "DISPATCHER_ALLOW_PRIVATE_TARGETS", default_value = "false")]
    pub allow_private_targets: String,
}

/// Collects the problems of several settings, so that all of them are reported at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|problem| self.add(problem)).ok()
    }

    fn add(&mut self, problem: String) {
        self.0.push(problem);
    }
}

/// A whole number within `range`; the error says which setting, what it got, and what it takes.
fn number<T>(name: &str, text: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    text.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{name}: {text:?} is not {what} from {} to {}", range.start(), range.end()))
}

fn boolean(name: &str, text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{name}: {other:?} is not true or false")),
    }
}

fn duration(name: &str, text: &str, max: Duration) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero() && *d <= max)
        .ok_or_else(|| format!("{name}: {text:?} is not a duration from 1ms to {}", humantime::format_duration(max)))
}

fn required(name: &str, value: Option<String>, what: &str) -> Result<String, String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| format!("{name}: missing ({what})"))
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
        let key = problems.check(required("COSMOSDB_KEY", self.cosmos_key, "the Cosmos DB account key"));
        let create_if_missing = problems.check(boolean("COSMOSDB_CREATE_IF_MISSING", &self.cosmos_create_if_missing));
        let retention_days =
            problems.check(number("DISPATCHER_RETENTION_DAYS", &self.retention_days, 1..=3650u32, "a number of days"));
        let cache = problems.check(number(
            "DISPATCHER_WEBHOOK_CACHE_SECONDS",
            &self.webhook_cache_seconds,
            0..=3600u64,
            "a number of seconds",
        ));
        let service_bus = problems.check(
            required("ServiceBusConnection", self.service_bus, "a connection string with a SharedAccessKey")
                .and_then(|text| ServiceBusConnection::parse(&text).map_err(|e| format!("ServiceBusConnection: {e}"))),
        );
        let retry_schedule = problems
            .check(self.retry_schedule.parse::<RetrySchedule>().map_err(|e| format!("DISPATCHER_RETRY_SCHEDULE: {e}")));
        let request_timeout =
            problems.check(duration("DISPATCHER_REQUEST_TIMEOUT", &self.request_timeout, Duration::from_secs(230)));
        let allow_private_targets =
            problems.check(boolean("DISPATCHER_ALLOW_PRIVATE_TARGETS", &self.allow_private_targets));
        for (name, queue) in [("EVENTS_QUEUE", &self.events_queue), ("DELIVERIES_QUEUE", &self.deliveries_queue)] {
            if queue.is_empty() || queue.contains('/') {
                problems.add(format!("{name}: {queue:?} is not a queue name"));
            }
        }
        let (
            Some(port),
            Some(endpoint),
            Some(key),
            Some(create_if_missing),
            Some(retention_days),
            Some(cache),
            Some(service_bus),
            Some(retry_schedule),
            Some(request_timeout),
            Some(allow_private_targets),
        ) = (
            port,
            endpoint,
            key,
            create_if_missing,
            retention_days,
            cache,
            service_bus,
            retry_schedule,
            request_timeout,
            allow_private_targets,
        )
        else {
            return Err(problems.0);
        };
        if !problems.0.is_empty() {
            return Err(problems.0);
        }
        Ok(ServeConfig {
            port,
            cosmos: CosmosConfig { endpoint, key, database: self.cosmos_database, create_if_missing, retention_days },
            webhook_cache: Duration::from_secs(cache),
            service_bus,
            events_queue: self.events_queue,
            deliveries_queue: self.deliveries_queue,
            service_bus_rest_url: self.service_bus_rest_url.filter(|u| !u.is_empty()),
            retry_schedule,
            request_timeout,
            allow_private_targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        local: LocalArgs,
    }

    fn parse(args: &[&str]) -> Result<LocalConfig, Vec<String>> {
        Cli::try_parse_from(std::iter::once("handler").chain(args.iter().copied())).unwrap().local.validate()
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).unwrap();
        assert_eq!((config.port, config.concurrency, config.allow_private_targets), (7071, 64, true));
        assert_eq!(config.retry_schedule, RetrySchedule::default());
        assert_eq!(config.request_timeout, Duration::from_secs(15));
    }

    #[test]
    fn every_problem_is_reported_at_once_and_keys_are_never_repeated() {
        let problems = parse(&[
            "--bind",
            "localhost",
            "--port",
            "70000",
            "--concurrency",
            "0",
            "--retry-schedule",
            "5s,soon",
            "--request-timeout",
            "0s",
            "--allow-private-targets",
            "maybe",
            "--api-key",
            "short-s3cret",
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        assert!(problems[0].starts_with("--bind / DISPATCHER_BIND: \"localhost\""));
        assert!(problems.iter().any(|p| p.starts_with("--retry-schedule / DISPATCHER_RETRY_SCHEDULE: \"soon\"")));
        assert!(problems.iter().all(|p| !p.contains("short-s3cret")));
    }
}
