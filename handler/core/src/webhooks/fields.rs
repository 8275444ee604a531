//! Decoders of a registration's single fields (some shared with its credentials): URLs,
//! booleans, patterns, the rate limit, the transform; each problem reported with its path.

use crate::model::{quote, whole, wrong_type, Problem};
use crate::policy::filter::{EventFilter, PatternError};
use crate::policy::targets::{http_url, UrlProblem};
use crate::template::Transform;
use serde_json::{Map, Value};
use std::num::NonZeroU32;

/// The most a rate limit may be: past it, the spacing of deliveries is below what a clock can keep.
pub const MAX_RATE_LIMIT: u32 = 100_000;

/// An absolute http(s) URL with a host; anything else is reported at `path`.
pub(super) fn decode_url(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> String {
    let text = match value {
        Some(Value::String(text)) => text,
        None => {
            problems.push(Problem::new(path, "is missing, expected an http or https URL"));
            return String::new();
        }
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "an http or https URL")));
            return String::new();
        }
    };
    let quoted = || quote(value.unwrap_or(&Value::Null));
    match http_url(text) {
        Ok(_) => {}
        Err(UrlProblem::NotHttp(_)) => {
            problems.push(Problem::new(path, format!("{} is not an http or https URL", quoted())))
        }
        Err(UrlProblem::NoHost) => problems.push(Problem::new(path, format!("{} has no host", quoted()))),
        Err(UrlProblem::Invalid(e)) => {
            problems.push(Problem::new(path, format!("{} is not a valid URL ({e})", quoted())))
        }
    }
    text.clone()
}

pub(super) fn decode_pattern(
    body: &Map<String, Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<EventFilter> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(pattern) => EventFilter::new(pattern)
            .map_err(|e| match e {
                PatternError::TooComplex(_) => problems.push(Problem::unprocessable(field, e.to_string())),
                e => problems.push(Problem::new(field, e.to_string())),
            })
            .ok(),
    }
}

pub(super) fn decode_bool(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "true or false")));
            false
        }
    }
}

pub(super) fn decode_rate_limit(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<NonZeroU32> {
    let expected = "a whole number of deliveries a second, from 1 to 100000";
    let limit = match value? {
        Value::Null => return None,
        Value::Number(n) => {
            whole(n).filter(|n| *n <= u64::from(MAX_RATE_LIMIT)).and_then(|n| NonZeroU32::new(n as u32))
        }
        other => {
            problems.push(Problem::new("rateLimit", wrong_type(other, expected)));
            return None;
        }
    };
    if limit.is_none() {
        problems.push(Problem::new("rateLimit", format!("{} is out of range, expected {expected}", value?)));
    }
    limit
}

pub(super) fn decode_transform(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Transform> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(source)) => {
            Transform::compile(source).map_err(|e| problems.push(Problem::new("transform", e.to_string()))).ok()
        }
        Some(other) => {
            problems.push(Problem::new("transform", wrong_type(other, "a template (a string)")));
            None
        }
    }
}
