//! Decoders of the plain fields a registration shares with its credentials: URLs and optional strings, each
//! problem reported with its path.

use crate::model::{quote, wrong_type, Problem};
use crate::policy::targets::{http_url, UrlProblem};
use serde_json::Value;

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

pub(super) fn decode_optional_string(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "a string")));
            None
        }
    }
}
