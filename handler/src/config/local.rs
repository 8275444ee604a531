//! The settings of `handler local`.

use super::{boolean, disable_after, duration, encryption_key, number, Problems};
use crate::adapters::sealed::EncryptionKey;
use crate::http::ApiKey;
use dispatcher_core::policy::retry::RetrySchedule;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `handler local` is configured with.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    pub bind: std::net::IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub webhooks_file: Option<PathBuf>,
    pub concurrency: usize,
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    /// Never printed: see the `Debug` of [`ApiKey`].
    pub api_key: Option<ApiKey>,
    pub allow_private_targets: bool,
    /// How long a webhook's attempts may all fail before it is disabled; `None`: never.
    pub disable_after: Option<Duration>,
    pub shutdown_grace: Duration,
    /// How long settled deliveries and rejected events are kept.
    pub retention: Duration,
    /// Seals webhook secrets at rest, when set.
    pub encryption_key: Option<EncryptionKey>,
}

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
    /// How long a webhook's attempts may all fail (at least three of them) before it is disabled; `off`: never.
    #[arg(long, env = "DISPATCHER_DISABLE_AFTER", default_value = "5d")]
    pub disable_after: String,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses.
    #[arg(long, env = "DISPATCHER_ALLOW_PRIVATE_TARGETS", default_value = "true")]
    pub allow_private_targets: String,
    /// How many days settled deliveries (with their attempts) and rejected events are kept, as on Azure.
    #[arg(long, env = "DISPATCHER_RETENTION_DAYS", default_value = "30")]
    pub retention_days: String,
    /// When set, every API call needs it in the `x-functions-key` header.
    #[arg(long, env = "DISPATCHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// 32 random bytes, base64: webhook secrets and credentials are stored encrypted with it.
    #[arg(long, env = "DISPATCHER_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
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
        let disable_after =
            problems.check(disable_after("--disable-after / DISPATCHER_DISABLE_AFTER", &self.disable_after));
        let allow_private_targets = problems
            .check(boolean("--allow-private-targets / DISPATCHER_ALLOW_PRIVATE_TARGETS", &self.allow_private_targets));
        let retention_days = problems.check(number(
            "--retention-days / DISPATCHER_RETENTION_DAYS",
            &self.retention_days,
            1..=3650u64,
            "a number of days",
        ));
        if self.api_key.as_ref().is_some_and(|key| key.len() < 16) {
            // Say what is wrong without repeating the key.
            problems.add("DISPATCHER_API_KEY: must be at least 16 characters".to_owned());
        }
        let encryption_key = problems.check(encryption_key(self.encryption_key));
        problems.into_result(|| {
            Some(LocalConfig {
                bind: bind?,
                port: port?,
                data_dir: self.data_dir,
                webhooks_file: self.webhooks,
                concurrency: concurrency?,
                retry_schedule: retry_schedule?,
                request_timeout: request_timeout?,
                api_key: self.api_key.map(ApiKey),
                allow_private_targets: allow_private_targets?,
                disable_after: disable_after?,
                shutdown_grace: shutdown_grace?,
                retention: Duration::from_secs(retention_days? * 86_400),
                encryption_key: encryption_key?,
            })
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
        assert_eq!(config.disable_after, Some(Duration::from_secs(5 * 86_400)));
        assert_eq!(config.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(parse(&["--disable-after", "off"]).unwrap().disable_after, None);
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
            "--disable-after",
            "soon",
            "--retention-days",
            "0",
        ])
        .unwrap_err();
        assert_eq!(problems.len(), 9, "{problems:#?}");
        assert!(problems.contains(
            &"--disable-after / DISPATCHER_DISABLE_AFTER: \"soon\" is not a duration (like 5d or 12h) or off"
                .to_owned()
        ));
        assert!(problems.iter().any(|p| p.starts_with("--retention-days / DISPATCHER_RETENTION_DAYS: \"0\"")));
        assert!(problems[0].starts_with("--bind / DISPATCHER_BIND: \"localhost\""));
        assert!(problems.iter().any(|p| p.starts_with("--retry-schedule / DISPATCHER_RETRY_SCHEDULE: \"soon\"")));
        assert!(problems.iter().all(|p| !p.contains("short-s3cret")));
    }
}
