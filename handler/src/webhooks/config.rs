//! A webhook's configuration as integrators write it: the original system's JSON shape, unchanged, so an
//! existing configuration imports as it is.

use crate::events::catalog;
use crate::validation::{join, quote, wrong_type, Problem, Report};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A webhook registration: where to deliver, which public events, and the attributes that route them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Webhook registration", extend("additionalProperties" = false))]
pub struct WebhookConfig {
    /// Where deliveries are POSTed: an absolute http or https URL.
    #[schemars(url, extend("examples" = ["https://example.com/webhooks/io"]))]
    pub url: String,
    /// The public events this webhook receives: an array of names, or one comma-separated string as in the original configuration.
    #[schemars(with = "SubscriptionsShape")]
    pub subscriptions: Vec<String>,
    /// Routing attributes: a public event reaches this webhook only when every payload field that is also an attribute has the attribute's value; those fields are then left out of the payload delivered.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// HTTP headers sent with every delivery (e.g. an API key for the receiver).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A disabled webhook receives nothing.
    #[serde(default)]
    pub disabled: bool,
    /// What this webhook is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where a signed `DeliveryFailure` callback is POSTed when a delivery to this webhook is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub failure_callback_url: Option<String>,
    /// How the dispatcher authenticates to the receiver, besides signing every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TargetAuth>,
}

/// Credentials sent to the receiver in `Authorization`. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetAuth {
    /// HTTP Basic authentication.
    Basic { username: String, password: String },
    /// A bearer token.
    Bearer { token: String },
}

impl std::fmt::Debug for TargetAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetAuth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            TargetAuth::Bearer { .. } => f.write_str("Bearer(***)"),
        }
    }
}

// Only for the schema: the two shapes `subscriptions` accepts.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum SubscriptionsShape {
    List(Vec<PublicEventName>),
    /// Comma-separated names, e.g. `"ping,service:subscribed"`.
    CommaSeparated(String),
}

// Only for the schema: a public event name.
struct PublicEventName;

impl JsonSchema for PublicEventName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PublicEventName".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "enum": catalog::names(true)})
    }
}

/// Headers the dispatcher sets itself on every delivery; a webhook cannot override them.
pub const RESERVED_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-correlation-id",
];

const FIELDS: [&str; 8] =
    ["url", "subscriptions", "attributes", "headers", "disabled", "description", "failureCallbackUrl", "auth"];

impl WebhookConfig {
    /// Decodes a registration body, reporting every problem with its path.
    pub fn decode(value: &Value) -> Result<WebhookConfig, Report> {
        let Value::Object(body) = value else {
            return Err(Report::single("body", wrong_type(value, "an object")));
        };
        let mut problems = Vec::new();
        for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            problems.push(Problem::new(
                key.as_str(),
                format!("is not a webhook field; known fields: {}", FIELDS.join(", ")),
            ));
        }
        let config = WebhookConfig {
            url: decode_url(body.get("url"), "url", &mut problems),
            subscriptions: decode_subscriptions(body.get("subscriptions"), &mut problems),
            attributes: decode_string_map(body, "attributes", &mut problems),
            headers: decode_string_map(body, "headers", &mut problems),
            disabled: decode_bool(body.get("disabled"), "disabled", &mut problems),
            description: decode_optional_string(body.get("description"), "description", &mut problems),
            failure_callback_url: match body.get("failureCallbackUrl") {
                None | Some(Value::Null) => None,
                url => Some(decode_url(url, "failureCallbackUrl", &mut problems)),
            },
            auth: decode_auth(body.get("auth"), &mut problems),
        };
        check_headers(&config.headers, &mut problems);
        Report::check(problems).map(|()| config)
    }

    /// Whether this webhook takes this public event at all (before attribute matching).
    pub fn subscribes_to(&self, event: &str) -> bool {
        self.subscriptions.iter().any(|s| s == event)
    }
}

/// An absolute http(s) URL with a host; anything else is reported at `path`.
pub fn decode_url(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> String {
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

/// Why a text is not a URL a webhook can be sent to.
#[derive(Debug)]
pub enum UrlProblem {
    Invalid(url::ParseError),
    /// Its scheme, which is not http or https.
    NotHttp(String),
    NoHost,
}

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlProblem::Invalid(e) => write!(f, "{e}"),
            UrlProblem::NotHttp(scheme) => write!(f, "the scheme {scheme:?} is not http or https"),
            UrlProblem::NoHost => write!(f, "it has no host"),
        }
    }
}

/// `text` as an absolute http(s) URL with a host: the rule for a webhook's URLs, at registration and when sending.
pub fn http_url(text: &str) -> Result<url::Url, UrlProblem> {
    let url = url::Url::parse(text).map_err(UrlProblem::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlProblem::NotHttp(url.scheme().to_owned()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::NoHost);
    }
    Ok(url)
}

fn decode_subscriptions(value: Option<&Value>, problems: &mut Vec<Problem>) -> Vec<String> {
    let entries: Vec<(String, &str)> = match value {
        None => {
            problems.push(Problem::new("subscriptions", "is missing, expected an array of public event names"));
            return Vec::new();
        }
        Some(Value::Array(items)) => {
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) => names.push((format!("subscriptions[{i}]"), name)),
                    None => problems
                        .push(Problem::new(format!("subscriptions[{i}]"), wrong_type(item, "a public event name"))),
                }
            }
            names
        }
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| ("subscriptions".to_owned(), name))
            .collect(),
        Some(other) => {
            problems.push(Problem::new(
                "subscriptions",
                wrong_type(other, "an array of public event names or a comma-separated string"),
            ));
            return Vec::new();
        }
    };
    let mut subscriptions: Vec<String> = Vec::with_capacity(entries.len());
    for (path, name) in entries {
        if catalog::public_event(name).is_none() {
            problems.push(Problem::new(
                path,
                format!(
                    "{} is not a public event; public events: {}",
                    quote(&Value::String(name.into())),
                    catalog::names(true).join(", ")
                ),
            ));
        } else if !subscriptions.iter().any(|s| s == name) {
            subscriptions.push(name.to_owned());
        }
    }
    subscriptions
}

fn decode_string_map(body: &Map<String, Value>, field: &str, problems: &mut Vec<Problem>) -> BTreeMap<String, String> {
    match body.get(field) {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(entries)) => entries
            .iter()
            .filter_map(|(key, value)| match value {
                Value::String(text) => Some((key.clone(), text.clone())),
                other => {
                    problems.push(Problem::new(join(field, key), wrong_type(other, "a string")));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(Problem::new(field, wrong_type(other, "an object of strings")));
            BTreeMap::new()
        }
    }
}

fn decode_optional_string(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "a string")));
            None
        }
    }
}

/// `{"type": "basic", "username", "password"}` or `{"type": "bearer", "token"}`. Credentials are never quoted.
fn decode_auth(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<TargetAuth> {
    const EXPECTED: &str = r#"{"type": "basic", "username": ..., "password": ...} or {"type": "bearer", "token": ...}"#;
    let fields = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            problems.push(Problem::new(
                "auth",
                format!("is {}, expected {EXPECTED}", if other.is_string() { "a string" } else { "not an object" }),
            ));
            return None;
        }
    };
    let mut text = |name: &str| match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        _ => {
            problems.push(Problem::new(join("auth", name), "is missing or not a non-empty string"));
            None
        }
    };
    match fields.get("type").and_then(Value::as_str) {
        Some("basic") => {
            let (username, password) = (text("username"), text("password"));
            Some(TargetAuth::Basic { username: username?, password: password? })
        }
        Some("bearer") => text("token").map(|token| TargetAuth::Bearer { token }),
        _ => {
            problems.push(Problem::new("auth.type", "must be \"basic\" or \"bearer\""));
            None
        }
    }
}

/// A registration body that may also name the webhook's id (`id`: 1 to 64 of `A-Z a-z 0-9 _ -`).
pub fn decode_registration(value: &Value) -> Result<(Option<String>, WebhookConfig), Report> {
    let mut body = value.clone();
    let id = body.as_object_mut().and_then(|fields| fields.remove("id"));
    let id_problem = match &id {
        None => None,
        Some(Value::String(id)) if is_valid_id(id) => None,
        Some(other) => {
            Some(Problem::new("id", format!("{} is not an id: 1 to 64 letters, digits, _ or -", quote(other))))
        }
    };
    match (WebhookConfig::decode(&body), id_problem) {
        (Ok(config), None) => Ok((id.and_then(|v| v.as_str().map(str::to_owned)), config)),
        (Ok(_), Some(problem)) => Err(Report::single(problem.path, problem.message)),
        (Err(report), problem) => {
            Err(Report::of(problem.into_iter().chain(report.problems().iter().cloned()).collect()).unwrap_or(report))
        }
    }
}

pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn decode_bool(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "true or false")));
            false
        }
    }
}

fn check_headers(headers: &BTreeMap<String, String>, problems: &mut Vec<Problem>) {
    for (name, value) in headers {
        let path = join("headers", name);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            problems.push(Problem::new(
                path,
                format!("{} is not a valid HTTP header name", quote(&Value::String(name.clone()))),
            ));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            problems.push(Problem::new(path, "is set by the dispatcher on every delivery and cannot be configured"));
        } else if http::HeaderValue::from_str(value).is_err() {
            // The value may be a credential: say what is wrong without repeating it.
            problems.push(Problem::new(
                path,
                "has a value that is not a valid HTTP header value (control characters or non-ASCII)",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(body: Value) -> Vec<String> {
        WebhookConfig::decode(&body).unwrap_err().problems().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn the_original_shape_decodes_with_its_defaults() {
        let config = WebhookConfig::decode(
            &json!({"url": "https://example.com/hook", "subscriptions": "ping, service:subscribed"}),
        )
        .unwrap();
        assert_eq!(
            config,
            WebhookConfig {
                url: "https://example.com/hook".into(),
                subscriptions: vec!["ping".into(), "service:subscribed".into()],
                attributes: BTreeMap::new(),
                headers: BTreeMap::new(),
                disabled: false,
                description: None,
                failure_callback_url: None,
                auth: None,
            }
        );
        let full = json!({"url": "http://127.0.0.1:8080/wh2", "subscriptions": ["ping", "service:subscribed", "ping"],
            "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}, "headers": {"x-api-key": "k"}, "disabled": true});
        let config = WebhookConfig::decode(&full).unwrap();
        assert_eq!(config.subscriptions, ["ping", "service:subscribed"], "duplicates are dropped");
        assert_eq!(config.attributes["serviceId"], "aServiceId12345");
        assert_eq!(config.headers["x-api-key"], "k");
        assert!(config.disabled);
        // What is stored serializes back to a body that decodes to the same configuration.
        assert_eq!(WebhookConfig::decode(&serde_json::to_value(&config).unwrap()).unwrap(), config);
    }

    #[test]
    fn every_problem_of_a_registration_is_reported() {
        let cases = [
            (json!([]), vec!["body: [] is an array, expected an object"]),
            (json!({}), vec!["url: is missing, expected an http or https URL", "subscriptions: is missing, expected an array of public event names"]),
            (
                json!({"url": "ftp://example.com", "subscriptions": ["ping", "ping:all", 3], "subscription": "x"}),
                vec![
                    "subscription: is not a webhook field; known fields: url, subscriptions, attributes, headers, disabled, description, failureCallbackUrl, auth",
                    "url: \"ftp://example.com\" is not an http or https URL",
                    "subscriptions[2]: 3 is a number, expected a public event name",
                    "subscriptions[1]: \"ping:all\" is not a public event; public events: ping, service:subscribed",
                ],
            ),
            (json!({"url": "not a url", "subscriptions": "ping,nope"}), vec![
                "url: \"not a url\" is not a valid URL (relative URL without a base)",
                "subscriptions: \"nope\" is not a public event; public events: ping, service:subscribed",
            ]),
            (json!({"url": "https://", "subscriptions": 5}), vec![
                "url: \"https://\" is not a valid URL (empty host)",
                "subscriptions: 5 is a number, expected an array of public event names or a comma-separated string",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "attributes": {"serviceId": 5}, "headers": [], "disabled": "no"}), vec![
                "attributes.serviceId: 5 is a number, expected a string",
                "headers: [] is an array, expected an object of strings",
                "disabled: \"no\" is a string, expected true or false",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "headers": {"bad header": "v", "Webhook-Signature": "v", "x-key": "line\nbreak"}}), vec![
                "headers.Webhook-Signature: is set by the dispatcher on every delivery and cannot be configured",
                "headers.bad header: \"bad header\" is not a valid HTTP header name",
                "headers.x-key: has a value that is not a valid HTTP header value (control characters or non-ASCII)",
            ]),
        ];
        for (body, expected) in cases {
            assert_eq!(problems(body.clone()), expected, "{body}");
        }
    }

    #[test]
    fn our_optional_fields_decode_and_report() {
        let body = json!({"url": "https://a.example", "subscriptions": ["ping"], "description": "CRM",
            "failureCallbackUrl": "https://a.example/failed", "auth": {"type": "bearer", "token": "t0ken"}});
        let config = WebhookConfig::decode(&body).unwrap();
        assert_eq!(config.description.as_deref(), Some("CRM"));
        assert_eq!(config.failure_callback_url.as_deref(), Some("https://a.example/failed"));
        assert_eq!(config.auth, Some(TargetAuth::Bearer { token: "t0ken".into() }));
        assert_eq!(format!("{:?}", config.auth), "Some(Bearer(***))");
        let bad = json!({"url": "https://a.example", "subscriptions": [], "description": 1, "failureCallbackUrl": "mailto:x",
            "auth": {"type": "basic", "username": "u", "password": ""}});
        assert_eq!(
            problems(bad),
            [
                "description: 1 is a number, expected a string",
                "failureCallbackUrl: \"mailto:x\" is not an http or https URL",
                "auth.password: is missing or not a non-empty string",
            ]
        );
        assert_eq!(
            problems(json!({"url": "https://a.example", "subscriptions": [], "auth": {"type": "digest"}})),
            ["auth.type: must be \"basic\" or \"bearer\"",]
        );
    }

    #[test]
    fn a_registration_may_name_its_id() {
        let body = json!({"id": "crm-prod_1", "url": "https://a.example", "subscriptions": "ping"});
        let (id, config) = decode_registration(&body).unwrap();
        assert_eq!((id.as_deref(), config.subscriptions.as_slice()), (Some("crm-prod_1"), &["ping".to_owned()][..]));
        let report = decode_registration(&json!({"id": "a b", "url": "x", "subscriptions": []})).unwrap_err();
        assert_eq!(report.to_string(), "id: \"a b\" is not an id: 1 to 64 letters, digits, _ or -; url: \"x\" is not a valid URL (relative URL without a base)");
    }

    #[test]
    fn header_values_are_never_repeated_in_reports() {
        let report =
            problems(json!({"url": "https://a.example", "subscriptions": [], "headers": {"x-api-key": "s3cret\u{7}"}}));
        assert!(report.iter().all(|p| !p.contains("s3cret")), "{report:?}");
    }
}
