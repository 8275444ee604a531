//! Decoding a webhook registration, as integrators write it: the original system's JSON shape, unchanged (an
//! existing configuration imports as it is), with every problem reported at once, each with its path.

use super::credentials::decode_auth;
use super::fields::{decode_bool, decode_pattern, decode_rate_limit, decode_transform, decode_url};
use crate::events::catalog;
use crate::inbound::received;
use crate::model::{join, optional_string, quote, unknown_keys, wrong_type, Problem, Report, TenantId, WebhookConfig};
use crate::policy::retry::{RetrySchedule, ScheduleError};
use crate::request::RESERVED_HEADERS;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The JSON Schema of a registration body (`schemas/webhook.json`): the configuration's, with the public events
/// of the catalog as the names `subscriptions` takes.
pub fn schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(WebhookConfig)).unwrap_or_default();
    let names = serde_json::json!({"anyOf": [
        {"type": "string", "enum": catalog::names(true)},
        {"type": "string", "pattern": received::subscription_pattern(),
            "description": "A source's events: <sourceId>:<provider event type>, or <sourceId>:* for all of them"}
    ]});
    if let Some(shapes) = schema.pointer_mut("/$defs/SubscriptionsShape/anyOf/0/items") {
        *shapes = names;
    }
    // What the decoder checks beyond the derived types: header names and values, credentials' fields.
    if let Some(headers) = schema.pointer_mut("/properties/headers") {
        let reserved: Vec<String> = RESERVED_HEADERS.iter().map(|h| case_insensitive(h)).collect();
        headers["propertyNames"] = serde_json::json!({
            "pattern": format!("^(?!({})$)[!#$%&'*+.^_`|~0-9A-Za-z-]+$", reserved.join("|"))
        });
        headers["additionalProperties"] =
            serde_json::json!({"type": "string", "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"});
    }
    if let Some(Value::Array(variants)) = schema.pointer_mut("/$defs/TargetAuth/oneOf") {
        for variant in variants.iter_mut() {
            variant["unevaluatedProperties"] = Value::Bool(false);
            super::credentials::constrain_schema(variant);
        }
    }
    for def in ["OAuth2Client", "ClientCertificate"] {
        if let Some(def) = schema.pointer_mut(&format!("/$defs/{def}")) {
            super::credentials::constrain_schema(def);
        }
    }
    if let Some(list) = schema.pointer_mut("/$defs/SubscriptionsShape/anyOf/1") {
        let names: Vec<String> = catalog::names(true).iter().map(|n| n.replace('.', "\\.")).collect();
        let name = format!("({})", names.join("|"));
        list["pattern"] = Value::from(format!("^\\s*({name}\\s*)?(,\\s*({name}\\s*)?)*$"));
    }
    nullable_optionals(&mut schema);
    schema
}

/// `name` as a pattern matching it in any case (`[Hh][Oo][Ss][Tt]`).
fn case_insensitive(name: &str) -> String {
    name.chars()
        .map(|c| match c.is_ascii_alphabetic() {
            true => format!("[{}{}]", c.to_ascii_uppercase(), c),
            false => c.to_string(),
        })
        .collect()
}

/// Makes every optional property of an object schema accept `null` too, as the decoders do (null is absent).
pub fn nullable_optionals(schema: &mut Value) {
    let required: Vec<Value> = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            let nullable =
                property.get("type").and_then(Value::as_array).is_some_and(|t| t.contains(&Value::from("null")))
                    || property
                        .get("anyOf")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|v| v["type"] == "null"));
            if !required.contains(&Value::from(name.as_str())) && !nullable {
                let original = std::mem::take(property);
                *property = serde_json::json!({"anyOf": [original, {"type": "null"}]});
            }
        }
    }
}

/// The JSON Schema of `POST /webhooks`: a registration that may also name the webhook's id.
pub fn registration_schema() -> Value {
    let mut schema = schema();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        let id = serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
            "description": "1 to 64 letters, digits, `_` or `-`; generated when absent."});
        let mut with_id = Map::from_iter([("id".to_owned(), id)]);
        with_id.append(properties);
        *properties = with_id;
    }
    schema
}

/// The id of a webhook imported without one: `wh_` + a hash of its URL and attributes, so that importing the
/// same configuration twice changes nothing.
pub fn derived_id(config: &WebhookConfig) -> String {
    let identity = serde_json::json!([config.url, config.attributes]).to_string();
    let digest = Sha256::digest(identity.as_bytes());
    digest[..10].iter().fold("wh_".to_owned(), |mut id, b| {
        id.push_str(&format!("{b:02x}"));
        id
    })
}

const FIELDS: [&str; 16] = [
    "url",
    "subscriptions",
    "attributes",
    "headers",
    "disabled",
    "description",
    "failureCallbackUrl",
    "auth",
    "filter",
    "retrySchedule",
    "rateLimit",
    "callbackUrl",
    "callbackAuth",
    "failWhen",
    "tenant",
    "transform",
];

impl WebhookConfig {
    /// Refuses a merge patch naming a field a webhook does not have.
    pub fn check_patch(patch: &Value) -> Result<(), Report> {
        crate::model::unknown_patch_keys(patch, &FIELDS, "webhook")
    }

    /// Decodes a registration body, reporting every problem with its path.
    pub fn decode(value: &Value) -> Result<WebhookConfig, Report> {
        let Value::Object(body) = value else {
            return Err(Report::single("body", wrong_type(value, "an object")));
        };
        let mut problems = Vec::new();
        problems.extend(unknown_keys(body, "", &FIELDS, "webhook field", "fields"));
        let config = WebhookConfig {
            url: decode_url(body.get("url"), "url", &mut problems),
            subscriptions: decode_subscriptions(body.get("subscriptions"), &mut problems),
            attributes: decode_string_map(body, "attributes", &mut problems),
            headers: decode_string_map(body, "headers", &mut problems),
            disabled: decode_bool(body.get("disabled"), "disabled", &mut problems),
            description: optional_string(body.get("description"), "description", &mut problems),
            failure_callback_url: decode_optional_url(body, "failureCallbackUrl", &mut problems),
            auth: decode_auth(body.get("auth"), "auth", &mut problems),
            callback_url: decode_optional_url(body, "callbackUrl", &mut problems),
            callback_auth: decode_auth(body.get("callbackAuth"), "callbackAuth", &mut problems),
            filter: decode_pattern(body, "filter", &mut problems),
            fail_when: decode_pattern(body, "failWhen", &mut problems),
            retry_schedule: match body.get("retrySchedule") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => RetrySchedule::parse_strict(text)
                    .map_err(|e: ScheduleError| problems.push(Problem::new("retrySchedule", e.to_string())))
                    .ok(),
                Some(other) => {
                    problems.push(Problem::new("retrySchedule", wrong_type(other, "a string like \"10s,1m,10m\"")));
                    None
                }
            },
            rate_limit: decode_rate_limit(body.get("rateLimit"), &mut problems),
            tenant: decode_tenant(body.get("tenant"), &mut problems),
            transform: decode_transform(body.get("transform"), &mut problems),
        };
        check_headers(&config.headers, &mut problems);
        Report::check(problems).map(|()| config)
    }
}

fn decode_optional_url(body: &Map<String, Value>, field: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        url => Some(decode_url(url, field, problems)),
    }
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
        if catalog::public_event(name).is_none() && !received::is_received(name) {
            problems.push(Problem::new(
                path,
                format!(
                    "{} is not a public event; public events: {}; or a source's events: \"<sourceId>:<type>\", \"<sourceId>:*\"",
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

/// A registration body that may also name the webhook's id (`id`: 1 to 64 of `A-Z a-z 0-9 _ -`).
pub fn decode_registration(value: &Value) -> Result<(Option<String>, WebhookConfig), Report> {
    with_id(value, false, WebhookConfig::decode)
}

/// A body that may also name its item's id (1 to 64 of `A-Z a-z 0-9 _ -`; `null` taken as absent when
/// `null_absent`), the rest decoded by `decode`: every problem of both reported, the id's first.
pub(crate) fn with_id<C>(
    value: &Value,
    null_absent: bool,
    decode: impl FnOnce(&Value) -> Result<C, Report>,
) -> Result<(Option<String>, C), Report> {
    let mut body = value.clone();
    let (id, id_problem) = match body.as_object_mut().and_then(|fields| fields.remove("id")) {
        None => (None, None),
        Some(Value::Null) if null_absent => (None, None),
        Some(Value::String(id)) if is_valid_id(&id) => (Some(id), None),
        Some(other) => {
            let problem =
                Problem::new("id", format!("{} is not an id: 1 to 64 letters, digits, _ or -", quote(&other)));
            (None, Some(problem))
        }
    };
    match (decode(&body), id_problem) {
        (Ok(config), None) => Ok((id, config)),
        (Ok(_), Some(problem)) => Err(Report::single(problem.path, problem.message)),
        (Err(report), problem) => {
            Err(Report::of(problem.into_iter().chain(report.problems().iter().cloned()).collect()).unwrap_or(report))
        }
    }
}

fn decode_tenant(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<TenantId> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if is_valid_id(id) => Some(id.as_str().into()),
        Some(other) => {
            problems.push(Problem::new(
                "tenant",
                format!("{} is not a tenant id: 1 to 64 letters, digits, _ or -", quote(other)),
            ));
            None
        }
    }
}

pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub use super::fields::MAX_RATE_LIMIT;

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
pub(super) mod tests {
    use super::*;
    use crate::model::TargetAuth;
    use serde_json::json;

    /// What decoding `body` as a registration reports, each problem as `path: message`.
    pub(in crate::webhooks) fn problems(body: Value) -> Vec<String> {
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
                ..Default::default()
            }
        );
        let full = json!({"url": "http://127.0.0.1:8080/wh2", "subscriptions": ["ping", "service:subscribed", "ping"],
            "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}, "headers": {"x-api-key": "k"}, "disabled": true,
            "rateLimit": 20});
        let config = WebhookConfig::decode(&full).unwrap();
        assert_eq!(config.subscriptions, ["ping", "service:subscribed"], "duplicates are dropped");
        assert_eq!(config.attributes["serviceId"], "aServiceId12345");
        assert_eq!(config.headers["x-api-key"], "k");
        assert!(config.disabled);
        assert_eq!(config.rate_limit, std::num::NonZeroU32::new(20));
        // What is stored serializes back to a body that decodes to the same configuration.
        assert_eq!(WebhookConfig::decode(&serde_json::to_value(&config).unwrap()).unwrap(), config);
    }

    #[test]
    fn a_webhook_subscribes_to_a_sources_events_by_name_or_all_of_them() {
        let body = json!({"url": "https://a.example", "subscriptions": ["stripe:customer.updated", "gh:*", "ping"]});
        let config = WebhookConfig::decode(&body).unwrap();
        assert_eq!(config.subscriptions, ["stripe:customer.updated", "gh:*", "ping"]);
        // The catalog's non-public events are not received ones.
        let hidden = WebhookConfig::decode(&json!({"url": "https://a.example", "subscriptions": ["ping:all"]}));
        assert!(hidden.unwrap_err().to_string().starts_with("subscriptions[0]: \"ping:all\" is not a public event"));
    }

    #[test]
    fn every_problem_of_a_registration_is_reported() {
        let cases = [
            (json!([]), vec!["body: [] is an array, expected an object"]),
            (json!({}), vec!["url: is missing, expected an http or https URL", "subscriptions: is missing, expected an array of public event names"]),
            (
                json!({"url": "ftp://example.com", "subscriptions": ["ping", "ping:all", 3], "subscription": "x"}),
                vec![
                    "subscription: is not a webhook field; known fields: url, subscriptions, attributes, headers, disabled, description, failureCallbackUrl, auth, filter, retrySchedule, rateLimit, callbackUrl, callbackAuth, failWhen, tenant, transform",
                    "url: \"ftp://example.com\" is not an http or https URL",
                    "subscriptions[2]: 3 is a number, expected a public event name",
                    "subscriptions[1]: \"ping:all\" is not a public event; public events: ping, service:subscribed; or a source's events: \"<sourceId>:<type>\", \"<sourceId>:*\"",
                ],
            ),
            (json!({"url": "not a url", "subscriptions": "ping,nope"}), vec![
                "url: \"not a url\" is not a valid URL (relative URL without a base)",
                "subscriptions: \"nope\" is not a public event; public events: ping, service:subscribed; or a source's events: \"<sourceId>:<type>\", \"<sourceId>:*\"",
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
            (json!({"url": "https://a.example", "subscriptions": [], "filter": ["ping"], "retrySchedule": "5s,soon"}), vec![
                "filter: is not an event pattern: an object naming the fields to match, e.g. {\"payload\": {\"fiscalCode\": [{\"prefix\": \"AAA\"}]}}",
                "retrySchedule: \"soon\" is not a duration like 5s, 2m or 1h (each delay is a whole number and one unit: ms, s, m or h)",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "filter": {"name": "ping"}, "retrySchedule": 5}), vec![
                "filter: at name: is not a list of values and operators, nor a nested pattern",
                "retrySchedule: 5 is a number, expected a string like \"10s,1m,10m\"",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "rateLimit": 0}), vec![
                "rateLimit: 0 is out of range, expected a whole number of deliveries a second, from 1 to 100000",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "rateLimit": 2.5}), vec![
                "rateLimit: 2.5 is out of range, expected a whole number of deliveries a second, from 1 to 100000",
            ]),
            (json!({"url": "https://a.example", "subscriptions": [], "rateLimit": "10"}), vec![
                "rateLimit: \"10\" is a string, expected a whole number of deliveries a second, from 1 to 100000",
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
            ["auth.type: must be \"basic\", \"bearer\", \"oauth2\" or \"mtls\"",]
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
    fn the_schema_lists_the_fields_the_decoder_accepts_and_names_the_public_events() {
        let schema = schema();
        let properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(properties, FIELDS);
        let items = &schema["$defs"]["SubscriptionsShape"]["anyOf"][0]["items"]["anyOf"];
        assert_eq!(items[0]["enum"], json!(["ping", "service:subscribed"]));
        let received = items[1]["pattern"].as_str().unwrap();
        assert!(received.starts_with(r"^(?!(ping|service:subscribed|ping:all|profile:completed|"), "{received}");
        let with_id = registration_schema();
        assert_eq!(with_id["properties"].as_object().unwrap().keys().next().map(String::as_str), Some("id"));
    }

    #[test]
    fn an_imported_webhook_without_an_id_gets_one_from_its_url_and_attributes() {
        let config = |url: &str| {
            WebhookConfig::decode(&json!({"url": url, "subscriptions": "ping", "attributes": {"name": "a"}})).unwrap()
        };
        let id = derived_id(&config("https://a.example/hook"));
        assert!(id.starts_with("wh_") && id.len() == 23 && is_valid_id(&id), "{id}");
        assert_eq!(id, derived_id(&config("https://a.example/hook")));
        assert_ne!(id, derived_id(&config("https://b.example/hook")));
    }

    #[test]
    fn header_values_are_never_repeated_in_reports() {
        let report =
            problems(json!({"url": "https://a.example", "subscriptions": [], "headers": {"x-api-key": "s3cret\u{7}"}}));
        assert!(report.iter().all(|p| !p.contains("s3cret")), "{report:?}");
    }
}
