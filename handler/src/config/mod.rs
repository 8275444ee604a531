//! The settings of `handler local` and `handler serve`: flags, each also read from an environment variable
//! (an app setting in Azure), validated together so that every problem is reported at once. Secrets are never
//! printed. `shared.rs` holds the settings both commands take, `local.rs` and `azure.rs` each command's own;
//! this file, the checks they use.

mod azure;
pub mod catalog;
mod local;
mod shared;

pub use azure::{ServeArgs, ServeConfig};
pub use local::{LocalArgs, LocalConfig};
use shared::Bounds;
pub use shared::{Delivery, DeliveryArgs};

use crate::adapters::sealed::EncryptionKey;
use std::fmt::Display;
use std::time::Duration;

/// One setting that is wrong: how it is set, and what is wrong with it (never its value when it is a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct SettingError {
    pub setting: String,
    pub problem: String,
}

impl SettingError {
    fn new(setting: &dyn Display, problem: impl Display) -> SettingError {
        SettingError { setting: setting.to_string(), problem: problem.to_string() }
    }
}

/// Every wrong setting of a command, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid settings:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
pub struct InvalidSettings(pub Vec<SettingError>);

/// How a user sets one argument, as its clap declaration says, so that each name is written once: shown as
/// `--retry-schedule / DISPATCHER_RETRY_SCHEDULE`, or only the variable (an app setting). Read only when shown:
/// building the declarations costs more than checking every setting.
#[derive(Clone, Copy)]
pub(crate) struct Setting {
    declared: fn() -> clap::Command,
    id: &'static str,
    with_flag: bool,
}

/// Argument `id` of `A`, shown with its flag and its variable.
pub(crate) fn name<A: clap::Args>(id: &'static str) -> Setting {
    Setting { declared: || A::augment_args(clap::Command::new("handler")), id, with_flag: true }
}

/// Argument `id` of `A`, shown as its environment variable (app setting) alone.
pub(crate) fn variable<A: clap::Args>(id: &'static str) -> Setting {
    Setting { with_flag: false, ..name::<A>(id) }
}

impl Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let command = (self.declared)();
        let Some(arg) = command.get_arguments().find(|arg| arg.get_id() == self.id) else {
            debug_assert!(false, "no setting {}", self.id);
            return f.write_str(self.id);
        };
        let env = arg.get_env().map(|env| env.to_string_lossy());
        match (arg.get_long().filter(|_| self.with_flag), env) {
            (Some(long), Some(env)) => write!(f, "--{long} / {env}"),
            (None, Some(env)) => f.write_str(&env),
            (Some(long), None) => write!(f, "--{long}"),
            (None, None) => f.write_str(self.id),
        }
    }
}

/// Collects the problems of several settings, so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Problems(Vec<SettingError>);

impl Problems {
    pub(crate) fn check<T>(&mut self, result: Result<T, SettingError>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    /// Checks a value another layer read, whose error says what is wrong but not which setting it came from.
    pub(crate) fn check_setting<T, E: Display>(&mut self, setting: &dyn Display, result: Result<T, E>) -> Option<T> {
        self.check(result.map_err(|problem| SettingError::new(setting, problem)))
    }

    pub(crate) fn add(&mut self, setting: &dyn Display, problem: impl Display) {
        self.0.push(SettingError::new(setting, problem));
    }

    /// The problems found, when there are any.
    pub(crate) fn into_result<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, InvalidSettings> {
        match (self.0.is_empty(), value()) {
            (true, Some(value)) => Ok(value),
            _ => Err(InvalidSettings(self.0)),
        }
    }
}

/// A whole number within `range`; the error says which setting, what it got, and what it takes.
pub(crate) fn number<T>(
    setting: &dyn Display,
    text: &str,
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> Result<T, SettingError>
where
    T: std::str::FromStr + PartialOrd + Display,
{
    text.parse::<T>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        SettingError::new(setting, format!("{text:?} is not {what} from {} to {}", range.start(), range.end()))
    })
}

pub(crate) fn boolean(setting: &dyn Display, text: &str) -> Result<bool, SettingError> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(SettingError::new(setting, format!("{other:?} is not true or false"))),
    }
}

pub(crate) fn duration(setting: &dyn Display, text: &str, max: Duration) -> Result<Duration, SettingError> {
    humantime::parse_duration(text).ok().filter(|d| !d.is_zero() && *d <= max).ok_or_else(|| {
        let max = humantime::format_duration(max);
        SettingError::new(setting, format!("{text:?} is not a duration from 1ms to {max}"))
    })
}

/// `--disable-after`: a duration, or `off`.
pub(crate) fn disable_after(setting: &dyn Display, text: &str) -> Result<Option<Duration>, SettingError> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| SettingError::new(setting, format!("{text:?} is not a duration (like 5d or 12h) or off")))
}

/// The encryption key, when set (an empty value is no key).
pub(crate) fn encryption_key(
    setting: &dyn Display,
    text: Option<String>,
) -> Result<Option<EncryptionKey>, SettingError> {
    let key = text.filter(|k| !k.is_empty()).map(|text| EncryptionKey::parse(&text));
    key.transpose().map_err(|problem| SettingError::new(setting, problem))
}

pub(crate) fn required(setting: &dyn Display, value: Option<String>, what: &str) -> Result<String, SettingError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| SettingError::new(setting, format!("missing ({what})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_named_as_clap_declares_it() {
        assert_eq!(name::<DeliveryArgs>("retry_schedule").to_string(), "--retry-schedule / DISPATCHER_RETRY_SCHEDULE");
        assert_eq!(variable::<ServeArgs>("cosmos_endpoint").to_string(), "COSMOSDB_ENDPOINT");
        let namespace = variable::<ServeArgs>("service_bus_namespace").to_string();
        assert_eq!(namespace, "ServiceBusConnection__fullyQualifiedNamespace");
        assert_eq!(variable::<LocalArgs>("api_key").to_string(), "DISPATCHER_API_KEY");
        let invalid = InvalidSettings(vec![
            SettingError::new(&"A", "is wrong"),
            SettingError::new(&variable::<ServeArgs>("events_queue"), "\"\" is not a queue name"),
        ]);
        assert_eq!(invalid.to_string(), "invalid settings:\n  A: is wrong\n  EVENTS_QUEUE: \"\" is not a queue name");
    }
}
