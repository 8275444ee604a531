//! The enrichers of a catalog file (`"enrichers": {"<name>": {...}}`), checked at load: a URL template, a
//! body template that compiles, target credentials in the webhooks' shapes, a `failWhen` pattern, a cache
//! time and a timeout. `${NAME}` in the URL, a header value or a credential is the environment variable
//! `NAME`, read at load (a secret stays out of the file); one that is not set is a problem of the file.

use super::{optional_string, required_string, unknown_keys};
use crate::events::enricher::{read_settings, Enricher, Method, UrlTemplate, BODY_INPUTS};
use crate::model::{join, quote, wrong_type, Problem};
use crate::policy::filter::EventFilter;
use crate::template::Template;
use serde_json::{Map, Value};
use std::time::Duration;

pub(crate) const ENRICHER: [&str; 8] = ["method", "url", "headers", "body", "auth", "failWhen", "cache", "timeout"];

/// The longest an enricher may wait for its answer: an event waits for it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the loader reads the environment with: `${NAME}` places.
pub type Environment<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn decode_enrichers(
    value: Option<&Value>,
    env: Environment<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<Enricher> {
    let entries = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            problems.push(Problem::new("enrichers", wrong_type(other, "an object of enrichers by name")));
            return Vec::new();
        }
    };
    entries
        .iter()
        .filter_map(|(name, entry)| {
            let path = join("enrichers", name);
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // The name is a key of `enrichment` in templates and payload paths.
                problems.push(Problem::new(&path, "an enricher's name is ASCII letters, digits and _"));
            }
            decode_enricher(name, entry, &path, env, problems)
        })
        .collect()
}

fn decode_enricher(
    name: &str,
    entry: &Value,
    path: &str,
    env: Environment<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Enricher> {
    let Value::Object(entry) = entry else {
        problems.push(Problem::new(path, wrong_type(entry, "an enricher {\"url\": ..., ...}")));
        return None;
    };
    let before = problems.len();
    unknown_keys(entry, path, &ENRICHER, "an enricher", problems);
    let method = match optional_string(entry, path, "method", problems).as_deref() {
        None | Some("GET") => Some(Method::Get),
        Some("POST") => Some(Method::Post),
        Some(other) => {
            problems.push(Problem::new(join(path, "method"), format!("{other} is not GET or POST")));
            None
        }
    };
    let url = required_string(entry, path, "url", problems).and_then(|text| {
        let at = join(path, "url");
        let template = UrlTemplate::parse(&text, env).map_err(|e| problems.push(Problem::new(&at, e))).ok()?;
        crate::policy::targets::http_url(&template.sample())
            .map_err(|e| problems.push(Problem::new(&at, format!("is not an http or https URL: {e}"))))
            .ok()?;
        Some(template)
    });
    let headers = decode_headers(entry.get("headers"), &join(path, "headers"), env, problems);
    let body = match entry.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(source)) => {
            if method == Some(Method::Get) {
                problems.push(Problem::new(join(path, "body"), "is for POST: a GET sends no body"));
            }
            Template::compile(source, &BODY_INPUTS)
                .map_err(|e| problems.push(Problem::new(join(path, "body"), e.to_string())))
                .ok()
        }
        Some(other) => {
            problems.push(Problem::new(join(path, "body"), wrong_type(other, "a template (a string)")));
            None
        }
    };
    let auth = entry.get("auth").map(|auth| substitute_all(auth, &join(path, "auth"), env, problems));
    let auth = crate::webhooks::decode_auth(auth.as_ref(), &join(path, "auth"), problems);
    let fail_when = match entry.get("failWhen") {
        None | Some(Value::Null) => None,
        Some(pattern) => EventFilter::new(pattern)
            .map_err(|e| problems.push(Problem::new(join(path, "failWhen"), e.to_string())))
            .ok(),
    };
    let cache = duration(entry, path, "cache", problems).unwrap_or(Duration::ZERO);
    let timeout = duration(entry, path, "timeout", problems).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        problems.push(Problem::new(join(path, "timeout"), format!("must be more than 0 and at most {MAX_TIMEOUT:?}")));
    }
    let (url, method) = (url?, method?);
    (problems.len() == before).then(|| Enricher {
        name: name.to_owned(),
        method,
        url,
        headers,
        body,
        auth,
        fail_when,
        cache,
        timeout,
    })
}

fn decode_headers(
    value: Option<&Value>,
    path: &str,
    env: Environment<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let entries = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "an object of header values")));
            return Vec::new();
        }
    };
    entries
        .iter()
        .filter_map(|(name, value)| {
            let at = join(path, name);
            let valid_name = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            if !valid_name || crate::request::RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                problems.push(Problem::new(&at, "is not a header name an enricher may set"));
                return None;
            }
            let Value::String(text) = value else {
                problems.push(Problem::new(&at, wrong_type(value, "a string")));
                return None;
            };
            let text = substitute(text, &at, env, problems);
            // The value may be a credential: what is wrong is said without it.
            if http::HeaderValue::from_str(&text).is_err() {
                problems.push(Problem::new(&at, "is not a valid header value"));
                return None;
            }
            Some((name.to_ascii_lowercase(), text))
        })
        .collect()
}

/// `text` with its settings read (`enricher::read_settings`); each problem at `path`. One that is not set is
/// kept as written, so that the value's own checks say nothing more of it.
fn substitute(text: &str, path: &str, env: Environment<'_>, problems: &mut Vec<Problem>) -> String {
    let (read, unset) = read_settings(text, env);
    problems.extend(unset.into_iter().map(|why| Problem::new(path, why)));
    read
}

/// `value` with [`substitute`] applied to every string in it.
fn substitute_all(value: &Value, path: &str, env: Environment<'_>, problems: &mut Vec<Problem>) -> Value {
    match value {
        Value::String(text) => Value::String(substitute(text, path, env, problems)),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), substitute_all(v, &join(path, k), env, problems)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

fn duration(entry: &Map<String, Value>, path: &str, key: &str, problems: &mut Vec<Problem>) -> Option<Duration> {
    let text = optional_string(entry, path, key, problems)?;
    humantime::parse_duration(&text)
        .map_err(|e| {
            problems.push(Problem::new(
                join(path, key),
                format!("{} is not a duration such as \"5m\": {e}", quote(&Value::from(text.as_str()))),
            ))
        })
        .ok()
}
