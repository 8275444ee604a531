//! The settings both runtimes share: how deliveries are made, how long they are kept, how long they may take
//! to finish at shutdown, and the key that seals secrets. Each is declared once, with its flag and its environment variable, and flattened into the settings
//! of `handler local` and of `handler serve`.

use super::{boolean, disable_after, duration, encryption_key, name, number, Problems};
use crate::adapters::guard::AllowedNetworks;
use crate::adapters::sealed::EncryptionKey;
use dispatcher_core::events::Catalog;
use dispatcher_core::policy::retry::RetrySchedule;
use ipnet::IpNet;
use std::time::Duration;

/// The shared settings, checked.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub retry_schedule: RetrySchedule,
    /// How long one attempt may take.
    pub request_timeout: Duration,
    /// How long a webhook's attempts may all fail before it is disabled; `None`: never.
    pub disable_after: Option<Duration>,
    /// How many days settled deliveries (with their attempts) and rejected events are kept.
    pub retention_days: u32,
    /// Seals webhook secrets at rest, when set.
    pub encryption_key: Option<EncryptionKey>,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses.
    pub allow_private_targets: bool,
    /// Private networks every webhook may reach, tenants' too.
    pub allowed_networks: AllowedNetworks,
    /// On SIGINT/SIGTERM (the Functions host stopping the handler), how long the deliveries in flight may take
    /// to finish.
    pub shutdown_grace: Duration,
    /// The events and the mapping table (`DISPATCHER_CATALOG`).
    pub catalog: &'static Catalog,
}

/// What a runtime decides of the shared settings.
pub(crate) struct Bounds {
    /// The longest an attempt may take there.
    pub max_request_timeout: Duration,
    /// Whether private targets are allowed when the setting is not given.
    pub private_targets_by_default: bool,
    /// The least shutdown grace when the setting is not given; the default is the request timeout and 5 s more,
    /// so that an attempt under way can always finish and be recorded.
    pub least_grace: Duration,
}

/// The shared settings as given; [`DeliveryArgs::validate`] checks them with the rest of a command's.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Delays between attempts; a delivery gets one attempt more than there are delays.
    #[arg(long, env = "DISPATCHER_RETRY_SCHEDULE", default_value = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h")]
    pub retry_schedule: String,
    /// How long one delivery attempt may take.
    #[arg(long, env = "DISPATCHER_REQUEST_TIMEOUT", default_value = "15s")]
    pub request_timeout: String,
    /// How long a webhook's attempts may all fail (at least three of them) before it is disabled; `off`: never.
    #[arg(long, env = "DISPATCHER_DISABLE_AFTER", default_value = "5d")]
    pub disable_after: String,
    /// How many days settled deliveries (with their attempts) and rejected events are kept (on Azure, the
    /// containers' TTL).
    #[arg(long, env = "DISPATCHER_RETENTION_DAYS", default_value = "30")]
    pub retention_days: String,
    /// 32 random bytes, base64 (a Key Vault reference in Azure): webhook secrets and credentials are stored
    /// encrypted with it.
    #[arg(long, env = "DISPATCHER_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Whether webhook URLs may resolve to loopback, private or link-local addresses [default: true for
    /// `handler local`, false for `handler serve`].
    #[arg(long, env = "DISPATCHER_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: Option<String>,
    /// Private networks (CIDR, comma-separated, e.g. `10.20.0.0/16`) that every webhook may reach, tenants'
    /// too, whose webhooks are otherwise held to the SSRF guard whatever DISPATCHER_ALLOW_PRIVATE_TARGETS says.
    #[arg(long, env = "DISPATCHER_ALLOWED_NETWORKS", default_value = "")]
    pub allowed_networks: String,
    /// On SIGINT/SIGTERM (or the Functions host stopping `handler serve`), how long in-flight deliveries may
    /// take to finish [default: the request timeout and 5s more; for `handler local` at least 10s].
    #[arg(long, env = "DISPATCHER_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<String>,
    /// The catalog file: the events accepted and how non-public ones map to public ones [default: the built-in
    /// one, `handler catalog show`]. A path, or the file's JSON itself (starting with `{`).
    #[arg(long, env = "DISPATCHER_CATALOG")]
    pub catalog: Option<String>,
}

impl DeliveryArgs {
    /// Adds each problem to `problems`.
    pub(crate) fn validate(self, problems: &mut Problems, bounds: Bounds) -> Option<Delivery> {
        let name = name::<DeliveryArgs>;
        let retry_schedule =
            problems.check_setting(&name("retry_schedule"), self.retry_schedule.parse::<RetrySchedule>());
        let request_timeout =
            problems.check(duration(&name("request_timeout"), &self.request_timeout, bounds.max_request_timeout));
        let disable_after = problems.check(disable_after(&name("disable_after"), &self.disable_after));
        let retention_days =
            problems.check(number(&name("retention_days"), &self.retention_days, 1..=3650u32, "a number of days"));
        let encryption_key = problems.check(encryption_key(&name("encryption_key"), self.encryption_key));
        let allow_private_targets = match &self.allow_private_targets {
            None => Some(bounds.private_targets_by_default),
            Some(text) => problems.check(boolean(&name("allow_private_targets"), text)),
        };
        let allowed_networks = problems.check_setting(&name("allowed_networks"), networks(&self.allowed_networks));
        let shutdown_grace = match &self.shutdown_grace {
            Some(text) => problems.check(duration(&name("shutdown_grace"), text, Duration::from_secs(600))),
            None => request_timeout.map(|timeout| (timeout + Duration::from_secs(5)).max(bounds.least_grace)),
        };
        let catalog = super::catalog::load(self.catalog.as_deref())
            .map_err(|found| found.into_iter().for_each(|problem| problems.add(&name("catalog"), problem)))
            .ok();
        Some(Delivery {
            catalog: catalog?,
            retry_schedule: retry_schedule?,
            request_timeout: request_timeout?,
            disable_after: disable_after?,
            retention_days: retention_days?,
            encryption_key: encryption_key?,
            allow_private_targets: allow_private_targets?,
            allowed_networks: allowed_networks?,
            shutdown_grace: shutdown_grace?,
        })
    }
}

/// Comma-separated CIDR networks (a bare address is its own /32 or /128).
fn networks(text: &str) -> Result<AllowedNetworks, String> {
    let parse = |item: &str| {
        item.parse::<IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{item:?} is not a network like 10.20.0.0/16"))
    };
    let items = text.split(',').map(str::trim).filter(|item| !item.is_empty());
    Ok(AllowedNetworks(items.map(parse).collect::<Result<Vec<_>, _>>()?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        delivery: DeliveryArgs,
    }

    fn serve() -> Bounds {
        Bounds {
            max_request_timeout: Duration::from_secs(230),
            private_targets_by_default: false,
            least_grace: Duration::ZERO,
        }
    }

    fn validate(args: &[&str], bounds: Bounds) -> Result<Delivery, Vec<String>> {
        let cli = Cli::try_parse_from(std::iter::once("handler").chain(args.iter().copied())).unwrap();
        let mut problems = Problems::default();
        let delivery = cli.delivery.validate(&mut problems, bounds);
        problems.into_result(|| delivery).map_err(|invalid| invalid.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn by_default_serve_refuses_private_targets_and_waits_out_an_attempt_at_shutdown() {
        let defaults = validate(&[], serve()).unwrap();
        assert!(!defaults.allow_private_targets, "the SSRF guard is on, on Azure");
        assert_eq!(defaults.shutdown_grace, Duration::from_secs(20), "the request timeout (15s) and 5s");
        assert_eq!(validate(&["--request-timeout", "60s"], serve()).unwrap().shutdown_grace, Duration::from_secs(65));
        let given = validate(&["--shutdown-grace", "3s", "--allow-private-targets", "true"], serve()).unwrap();
        assert_eq!((given.shutdown_grace, given.allow_private_targets), (Duration::from_secs(3), true));
        let local = Bounds { private_targets_by_default: true, least_grace: Duration::from_secs(10), ..serve() };
        let local = validate(&[], local).unwrap();
        assert_eq!((local.shutdown_grace, local.allow_private_targets), (Duration::from_secs(20), true));
        let short = Bounds { least_grace: Duration::from_secs(10), ..serve() };
        assert_eq!(validate(&["--request-timeout", "2s"], short).unwrap().shutdown_grace, Duration::from_secs(10));
    }

    #[test]
    fn every_problem_is_named_with_its_flag_and_variable() {
        let problems = validate(
            &["--shutdown-grace", "soon", "--allow-private-targets", "maybe", "--request-timeout", "5m"],
            serve(),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].starts_with("--request-timeout / DISPATCHER_REQUEST_TIMEOUT: \"5m\""), "{problems:#?}");
        assert!(problems.iter().any(|p| p.starts_with("--allow-private-targets / DISPATCHER_ALLOW_PRIVATE_TARGETS")));
        assert!(problems.iter().any(|p| p.starts_with("--shutdown-grace / DISPATCHER_SHUTDOWN_GRACE: \"soon\"")));
    }
}
