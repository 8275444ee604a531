//! The settings of `handler local`.

use super::{name, number, variable, Bounds, Delivery, DeliveryArgs, InvalidSettings, Problems};
use crate::http::ApiKey;
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
    /// Never printed: see the `Debug` of [`ApiKey`].
    pub api_key: Option<ApiKey>,
    pub delivery: Delivery,
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
    /// When set, every API call needs it in the `x-functions-key` header.
    #[arg(long, env = "DISPATCHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
}

impl LocalArgs {
    pub fn validate(self) -> Result<LocalConfig, InvalidSettings> {
        let name = name::<LocalArgs>;
        let mut problems = Problems::default();
        let bind = problems.check_setting(
            &name("bind"),
            self.bind.parse().map_err(|_| format!("{:?} is not an IP address", self.bind)),
        );
        let port = problems.check_setting(
            &name("port"),
            self.port.parse::<u16>().map_err(|_| format!("{:?} is not a port number (0-65535)", self.port)),
        );
        let concurrency = problems.check(number(&name("concurrency"), &self.concurrency, 1..=4096, "a number"));
        let bounds = Bounds {
            max_request_timeout: Duration::from_secs(300),
            private_targets_by_default: true,
            least_grace: Duration::from_secs(10),
        };
        let delivery = self.delivery.validate(&mut problems, bounds);
        if self.api_key.as_ref().is_some_and(|key| key.len() < 16) {
            // Say what is wrong without repeating the key.
            problems.add(&variable::<LocalArgs>("api_key"), "must be at least 16 characters");
        }
        problems.into_result(|| {
            Some(LocalConfig {
                bind: bind?,
                port: port?,
                data_dir: self.data_dir,
                webhooks_file: self.webhooks,
                concurrency: concurrency?,
                api_key: self.api_key.map(ApiKey),
                delivery: delivery?,
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
        let cli = Cli::try_parse_from(std::iter::once("handler").chain(args.iter().copied())).unwrap();
        cli.local.validate().map_err(|invalid| invalid.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]).unwrap();
        assert_eq!((config.port, config.concurrency, config.delivery.allow_private_targets), (7071, 64, true));
        assert_eq!(config.delivery.retry_schedule, dispatcher_core::policy::retry::RetrySchedule::default());
        assert_eq!(config.delivery.request_timeout, Duration::from_secs(15));
        assert_eq!(config.delivery.disable_after, Some(Duration::from_secs(5 * 86_400)));
        assert_eq!(config.delivery.retention_days, 30);
        assert_eq!(parse(&["--disable-after", "off"]).unwrap().delivery.disable_after, None);
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
