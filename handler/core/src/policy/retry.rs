//! When to try again: the retry schedule, its jitter, and `Retry-After`.

use sha2::{Digest, Sha256};
use std::time::Duration;

/// The longest wait before a retry, whatever the receiver asks for in `Retry-After`.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Delays between attempts: after attempt n (1-based) comes delay n-1; when they run out the delivery is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    /// 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h, 12h, 24h: eleven attempts over about two days.
    fn default() -> Self {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        RetrySchedule(
            [5, 30, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR]
                .map(Duration::from_secs)
                .to_vec(),
        )
    }
}

/// Why a retry schedule cannot be read: which of its delays, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0:?} is longer than 24h")]
    TooLong(String),
    #[error("{part:?} is not a duration like 5s, 2m or 1h ({reason})")]
    NotADuration { part: String, reason: String },
}

impl std::str::FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// `5s,30s,2m` (humantime durations); an empty string means no retries.
    fn from_str(text: &str) -> Result<Self, ScheduleError> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| match humantime::parse_duration(part) {
                Ok(delay) if delay <= MAX_DELAY => Ok(delay),
                Ok(_) => Err(ScheduleError::TooLong(part.to_owned())),
                Err(e) => Err(ScheduleError::NotADuration { part: part.to_owned(), reason: e.to_string() }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RetrySchedule(delays))
    }
}

/// The form the API reads ([`RetrySchedule::parse_strict`]): `5s,30s,2m`, each delay in one unit.
impl std::fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |d: &Duration| {
            let ms = d.as_millis();
            match ms {
                0 => "0s".to_owned(),
                _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
                _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
                _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
                _ => format!("{ms}ms"),
            }
        };
        f.write_str(&self.0.iter().map(part).collect::<Vec<_>>().join(","))
    }
}

/// The units a delay may be written in through the API, with their milliseconds.
const UNITS: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

impl RetrySchedule {
    /// Reads a schedule as the API takes it: comma-separated delays, each a whole number (no leading zero) and
    /// one unit (`ms`, `s`, `m`, `h`), at most 24h; what [`RetrySchedule::pattern`] says. (Settings and stored
    /// schedules are read by `FromStr`, which takes any humantime duration.)
    pub fn parse_strict(text: &str) -> Result<RetrySchedule, ScheduleError> {
        let one_unit = |part: &str| {
            UNITS.iter().any(|(unit, _)| {
                part.strip_suffix(unit).is_some_and(|n| {
                    let digits = !n.is_empty() && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
                    digits && !(*unit == "m" && part.ends_with("ms"))
                })
            })
        };
        let parts = text.split(',').map(str::trim).filter(|part| !part.is_empty());
        if let Some(part) = parts.clone().find(|part| !one_unit(part)) {
            let reason = "each delay is a whole number and one unit: ms, s, m or h".to_owned();
            return Err(ScheduleError::NotADuration { part: part.to_owned(), reason });
        }
        text.parse()
    }

    /// The pattern of the schedules `parse_strict` reads (each delay at most 24h).
    pub fn pattern() -> String {
        let day_ms = MAX_DELAY.as_millis() as u64;
        let units: Vec<String> =
            UNITS.iter().map(|(unit, ms)| format!("({}){unit}", crate::model::up_to(day_ms / ms))).collect();
        let delay = format!("({})", units.join("|"));
        format!("^\\s*({delay}\\s*)?(,\\s*({delay}\\s*)?)*$")
    }
}

// Stored and shown as its text, as a webhook's `retrySchedule` is written.
impl serde::Serialize for RetrySchedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RetrySchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<RetrySchedule, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for RetrySchedule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetrySchedule".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Delays between attempts, comma-separated, each a whole number and one unit (ms, s, m, h), at most 24h; a delivery gets one attempt more than there are delays, and an empty string means no retries.",
            "examples": ["10s,1m,10m"],
            "pattern": RetrySchedule::pattern()
        })
    }
}

impl RetrySchedule {
    pub fn delays(&self) -> &[Duration] {
        &self.0
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// The wait after failed attempt `attempt` (1-based), or `None` when it was the last. The scheduled delay gets
    /// ±20 % jitter derived from `seed` (the delivery id), so retries of many deliveries spread out and a given
    /// delivery always gets the same delays. A longer `Retry-After` wins, up to [`MAX_DELAY`].
    pub fn delay_after(&self, attempt: u32, seed: &str, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.0.get(attempt.checked_sub(1)? as usize)?;
        let jittered = base.mul_f64(0.8 + 0.4 * unit_interval(seed, attempt));
        Some(retry_after.map_or(jittered, |asked| jittered.max(asked)).min(MAX_DELAY))
    }
}

/// A number in [0, 1) determined by the seed and the attempt.
fn unit_interval(seed: &str, attempt: u32) -> f64 {
    let digest = Sha256::new().chain_update(seed.as_bytes()).chain_update(attempt.to_le_bytes()).finalize();
    let bits = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    httpdate::parse_http_date(value).ok().map(|at| at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn the_default_schedule_gives_eleven_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 11);
        assert_eq!(schedule, "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h".parse().unwrap());
        assert_eq!(schedule.delay_after(11, "d", None), None, "exhausted");
        assert_eq!(schedule.delay_after(0, "d", None), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_is_stable() {
        let schedule = RetrySchedule::default();
        let mut seen = std::collections::HashSet::new();
        for i in 0..500 {
            let seed = format!("dlv_{i}");
            for (n, base) in schedule.delays().iter().enumerate() {
                let delay = schedule.delay_after(n as u32 + 1, &seed, None).unwrap();
                assert!(delay >= base.mul_f64(0.8) && delay <= base.mul_f64(1.2), "{delay:?} vs {base:?}");
                assert_eq!(Some(delay), schedule.delay_after(n as u32 + 1, &seed, None));
                seen.insert(delay);
            }
        }
        assert!(seen.len() > 4000, "jitter spreads retries out: {} distinct delays", seen.len());
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        let schedule: RetrySchedule = "1s".parse().unwrap();
        assert_eq!(schedule.delay_after(1, "d", Some(Duration::from_secs(120))), Some(Duration::from_secs(120)));
        assert!(schedule.delay_after(1, "d", Some(Duration::from_millis(1))).unwrap() >= Duration::from_millis(800));
        assert_eq!(schedule.delay_after(1, "d", Some(Duration::from_secs(10 * 86400))), Some(MAX_DELAY));
        let now = UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(0)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }

    #[test]
    fn schedules_are_read_from_flags_with_clear_errors() {
        assert_eq!(
            "100ms, 2s".parse::<RetrySchedule>().unwrap().delays(),
            [Duration::from_millis(100), Duration::from_secs(2)]
        );
        assert_eq!("".parse::<RetrySchedule>().unwrap().max_attempts(), 1);
        let schedule: RetrySchedule = "5s, 1m30s,2h".parse().unwrap();
        assert_eq!(schedule.to_string(), "5s,90s,2h");
        assert_eq!(schedule.to_string().parse::<RetrySchedule>().unwrap(), schedule);
        assert!("5s,later"
            .parse::<RetrySchedule>()
            .unwrap_err()
            .to_string()
            .starts_with("\"later\" is not a duration"));
        assert_eq!("48h".parse::<RetrySchedule>().unwrap_err().to_string(), "\"48h\" is longer than 24h");
    }
}
