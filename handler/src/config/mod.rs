//! The settings of `handler local` and `handler serve`: flags, each also read from an environment variable
//! (an app setting in Azure), validated together so that every problem is reported at once. Secrets are never
//! printed. `shared.rs` holds the settings both commands take, `local.rs` and `azure.rs` each command's own;
//! this file, the checks they use.

mod azure;
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
    fn new(setting: &str, problem: impl Display) -> SettingError {
        SettingError { setting: setting.to_owned(), problem: problem.to_string() }
    }
}

/// Every wrong setting of a command, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid settings:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
pub struct InvalidSettings(pub Vec<SettingError>);

/// How a user sets argument `id` of `A`, read from its clap declaration so that each name is written once:
/// `--retry-schedule / DISPATCHER_RETRY_SCHEDULE`, or only the variable (an app setting) without a flag.
pub(crate) fn name<A: clap::Args>(id: &str) -> String {
    let command = A::augment_args(clap::Command::new("handler"));
    let Some(arg) = command.get_arguments().find(|arg| arg.get_id() == id) else {
        debug_assert!(false, "no setting {id}");
        return id.to_owned();
    };
    let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
    match (arg.get_long(), env) {
        (Some(long), Some(env)) => format!("--{long} / {env}"),
        (None, Some(env)) => env,
        (Some(long), None) => format!("--{long}"),
        (None, None) => id.to_owned(),
    }
}

/// The environment variable (app setting) of argument `id` of `A`.
pub(crate) fn variable<A: clap::Args>(id: &str) -> String {
    let command = A::augment_args(clap::Command::new("handler"));
    let env = command.get_arguments().find(|arg| arg.get_id() == id).and_then(|arg| arg.get_env());
    debug_assert!(env.is_some(), "no variable for setting {id}");
    env.map_or_else(|| id.to_owned(), |env| env.to_string_lossy().into_owned())
}

/// Collects the problems of several settings, so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Problems(Vec<SettingError>);

impl Problems {
    pub(crate) fn check<T>(&mut self, result: Result<T, SettingError>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    /// Checks a value another layer read, whose error says what is wrong but not which setting it came from.
    pub(crate) fn check_setting<T, E: Display>(&mut self, setting: &str, result: Result<T, E>) -> Option<T> {
        self.check(result.map_err(|problem| SettingError::new(setting, problem)))
    }

    pub(crate) fn add(&mut self, setting: &str, problem: impl Display) {
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
    setting: &str,
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

pub(crate) fn boolean(setting: &str, text: &str) -> Result<bool, SettingError> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(SettingError::new(setting, format!("{other:?} is not true or false"))),
    }
}

pub(crate) fn duration(setting: &str, text: &str, max: Duration) -> Result<Duration, SettingError> {
    humantime::parse_duration(text).ok().filter(|d| !d.is_zero() && *d <= max).ok_or_else(|| {
        let max = humantime::format_duration(max);
        SettingError::new(setting, format!("{text:?} is not a duration from 1ms to {max}"))
    })
}

/// `--disable-after`: a duration, or `off`.
pub(crate) fn disable_after(setting: &str, text: &str) -> Result<Option<Duration>, SettingError> {
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
pub(crate) fn encryption_key(setting: &str, text: Option<String>) -> Result<Option<EncryptionKey>, SettingError> {
    let key = text.filter(|k| !k.is_empty()).map(|text| EncryptionKey::parse(&text));
    key.transpose().map_err(|problem| SettingError::new(setting, problem))
}

pub(crate) fn required(setting: &str, value: Option<String>, what: &str) -> Result<String, SettingError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| SettingError::new(setting, format!("missing ({what})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_named_as_clap_declares_it() {
        assert_eq!(name::<DeliveryArgs>("retry_schedule"), "--retry-schedule / DISPATCHER_RETRY_SCHEDULE");
        assert_eq!(variable::<ServeArgs>("cosmos_endpoint"), "COSMOSDB_ENDPOINT");
        assert_eq!(variable::<ServeArgs>("service_bus_namespace"), "ServiceBusConnection__fullyQualifiedNamespace");
        assert_eq!(variable::<LocalArgs>("api_key"), "DISPATCHER_API_KEY");
        let invalid = InvalidSettings(vec![
            SettingError::new("A", "is wrong"),
            SettingError::new(&variable::<ServeArgs>("events_queue"), "\"\" is not a queue name"),
        ]);
        assert_eq!(invalid.to_string(), "invalid settings:\n  A: is wrong\n  EVENTS_QUEUE: \"\" is not a queue name");
    }
}
