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
use std::time::Duration;

/// Collects the problems of several settings, so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn check<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|problem| self.add(problem)).ok()
    }

    pub(crate) fn add(&mut self, problem: String) {
        self.0.push(problem);
    }
}

/// A whole number within `range`; the error says which setting, what it got, and what it takes.
pub(crate) fn number<T>(name: &str, text: &str, range: std::ops::RangeInclusive<T>, what: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    text.parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{name}: {text:?} is not {what} from {} to {}", range.start(), range.end()))
}

pub(crate) fn boolean(name: &str, text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{name}: {other:?} is not true or false")),
    }
}

pub(crate) fn duration(name: &str, text: &str, max: Duration) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero() && *d <= max)
        .ok_or_else(|| format!("{name}: {text:?} is not a duration from 1ms to {}", humantime::format_duration(max)))
}

/// `--disable-after`: a duration, or `off`.
pub(crate) fn disable_after(name: &str, text: &str) -> Result<Option<Duration>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| format!("{name}: {text:?} is not a duration (like 5d or 12h) or off"))
}

/// `DISPATCHER_ENCRYPTION_KEY`, when set (an empty value is no key).
pub(crate) fn encryption_key(text: Option<String>) -> Result<Option<EncryptionKey>, String> {
    text.filter(|k| !k.is_empty()).map(|text| EncryptionKey::parse("DISPATCHER_ENCRYPTION_KEY", &text)).transpose()
}

pub(crate) fn required(name: &str, value: Option<String>, what: &str) -> Result<String, String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| format!("{name}: missing ({what})"))
}

impl Problems {
    /// The problems found, when there are any.
    pub(crate) fn into_result<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<String>> {
        match (self.0.is_empty(), value()) {
            (true, Some(value)) => Ok(value),
            _ => Err(self.0),
        }
    }
}
