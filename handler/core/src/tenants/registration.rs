//! Decoding what an operator writes about a tenant, and what is asked of a token or a portal link, with every
//! problem reported at once, each with its path.

use crate::model::{quote, wrong_type, Problem, Report, TenantConfig, DEFAULT_MAX_WEBHOOKS};
use crate::webhooks::registration::is_valid_id;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const FIELDS: [&str; 4] = ["name", "grants", "maxWebhooks", "disabled"];

/// The most webhooks a tenant may be allowed.
pub const MAX_WEBHOOKS_LIMIT: u32 = 10_000;

impl TenantConfig {
    /// Decodes a tenant's configuration, reporting every problem with its path.
    pub fn decode(value: &Value) -> Result<TenantConfig, Report> {
        let Value::Object(body) = value else {
            return Err(Report::single("body", wrong_type(value, "an object")));
        };
        let mut problems = Vec::new();
        for key in body.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
            problems.push(Problem::new(
                key.as_str(),
                format!("is not a tenant field; known fields: {}", FIELDS.join(", ")),
            ));
        }
        let name = match body.get("name") {
            Some(Value::String(name)) if (1..=200).contains(&name.chars().count()) => name.clone(),
            Some(Value::String(_)) => {
                problems.push(Problem::new("name", "must be 1 to 200 characters"));
                String::new()
            }
            None => {
                problems.push(Problem::new("name", "is missing, expected the tenant's name"));
                String::new()
            }
            Some(other) => {
                problems.push(Problem::new("name", wrong_type(other, "a string")));
                String::new()
            }
        };
        let config = TenantConfig {
            name,
            grants: decode_grants(body.get("grants"), &mut problems),
            max_webhooks: decode_max_webhooks(body.get("maxWebhooks"), &mut problems),
            disabled: match body.get("disabled") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    problems.push(Problem::new("disabled", wrong_type(other, "true or false")));
                    false
                }
            },
        };
        Report::check(problems).map(|()| config)
    }
}

fn decode_grants(value: Option<&Value>, problems: &mut Vec<Problem>) -> BTreeMap<String, Vec<String>> {
    let entries = match value {
        None | Some(Value::Null) => return BTreeMap::new(),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            problems.push(Problem::new("grants", wrong_type(other, "an object of arrays of attribute values")));
            return BTreeMap::new();
        }
    };
    let mut grants = BTreeMap::new();
    for (attribute, values) in entries {
        let path = crate::model::join("grants", attribute);
        let Value::Array(items) = values else {
            problems.push(Problem::new(path, wrong_type(values, "an array of attribute values")));
            continue;
        };
        let mut granted: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(text) if !text.is_empty() => {
                    if !granted.contains(text) {
                        granted.push(text.clone());
                    }
                }
                Value::String(_) => problems.push(Problem::new(format!("{path}[{i}]"), "is empty, expected a value")),
                other => problems.push(Problem::new(format!("{path}[{i}]"), wrong_type(other, "a non-empty string"))),
            }
        }
        grants.insert(attribute.clone(), granted);
    }
    grants
}

fn decode_max_webhooks(value: Option<&Value>, problems: &mut Vec<Problem>) -> u32 {
    match value {
        None | Some(Value::Null) => DEFAULT_MAX_WEBHOOKS,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u64::from(MAX_WEBHOOKS_LIMIT)) => {
            n.as_u64().unwrap_or(0) as u32
        }
        Some(other) => {
            problems.push(Problem::new(
                "maxWebhooks",
                format!("{} is not a whole number from 0 to {MAX_WEBHOOKS_LIMIT}", quote(other)),
            ));
            DEFAULT_MAX_WEBHOOKS
        }
    }
}

/// A tenant body that may also name its id (`id`: 1 to 64 of `A-Z a-z 0-9 _ -`).
pub fn decode_tenant(value: &Value) -> Result<(Option<String>, TenantConfig), Report> {
    let mut body = value.clone();
    let id = body.as_object_mut().and_then(|fields| fields.remove("id"));
    let mut problems = Vec::new();
    let id = match id {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if is_valid_id(&id) => Some(id),
        Some(other) => {
            problems
                .push(Problem::new("id", format!("{} is not an id: 1 to 64 letters, digits, _ or -", quote(&other))));
            None
        }
    };
    match TenantConfig::decode(&body) {
        Ok(config) => Report::check(problems).map(|()| (id, config)),
        Err(report) => {
            Err(Report::of(problems.into_iter().chain(report.problems().iter().cloned()).collect()).unwrap_or(report))
        }
    }
}

/// What is asked of a new credential: a token (`POST /tenants/{id}/tokens`) or a portal link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    pub name: String,
    pub expires_in: Duration,
    pub read_only: bool,
}

/// How long credentials live: a token by default and at most, a portal link by default and at most.
pub const TOKEN_LIFETIME: (Duration, Duration) = (Duration::from_secs(90 * 86_400), Duration::from_secs(366 * 86_400));
pub const PORTAL_LINK_LIFETIME: (Duration, Duration) = (Duration::from_secs(3_600), Duration::from_secs(7 * 86_400));

/// Decodes `{"name", "expiresIn", "readOnly"}` for a token.
pub fn decode_token_request(value: &Value) -> Result<CredentialRequest, Report> {
    decode_credential(value, &["name", "expiresIn", "readOnly"], TOKEN_LIFETIME)
}

/// Decodes `{"expiresIn", "readOnly"}` for a portal link (named `portal link`).
pub fn decode_portal_link_request(value: &Value) -> Result<CredentialRequest, Report> {
    decode_credential(value, &["expiresIn", "readOnly"], PORTAL_LINK_LIFETIME)
}

fn decode_credential(
    value: &Value,
    fields: &[&str],
    (default, max): (Duration, Duration),
) -> Result<CredentialRequest, Report> {
    let empty = Map::new();
    let body = match value {
        Value::Object(body) => body,
        Value::Null => &empty,
        other => return Err(Report::single("body", wrong_type(other, "an object"))),
    };
    let mut problems = Vec::new();
    for key in body.keys().filter(|k| !fields.contains(&k.as_str())) {
        problems.push(Problem::new(key.as_str(), format!("is not a field here; known fields: {}", fields.join(", "))));
    }
    let name = match body.get("name") {
        _ if !fields.contains(&"name") => "portal link".to_owned(),
        Some(Value::String(name)) if (1..=200).contains(&name.chars().count()) => name.clone(),
        None => {
            problems.push(Problem::new("name", "is missing, expected what the token is for"));
            String::new()
        }
        Some(other) => {
            problems.push(Problem::new("name", format!("{} is not a name of 1 to 200 characters", quote(other))));
            String::new()
        }
    };
    let limit = humantime::format_duration(max);
    let expires_in = match body.get("expiresIn") {
        None | Some(Value::Null) => default,
        Some(Value::String(text)) => match humantime::parse_duration(text) {
            Ok(duration) if !duration.is_zero() && duration <= max => duration,
            Ok(_) => {
                problems.push(Problem::new(
                    "expiresIn",
                    format!("{} is out of range: more than 0, at most {limit}", quote(&Value::String(text.clone()))),
                ));
                default
            }
            Err(e) => {
                problems.push(Problem::new(
                    "expiresIn",
                    format!("{} is not a duration like \"90d\" or \"1h\" ({e})", quote(&Value::String(text.clone()))),
                ));
                default
            }
        },
        Some(other) => {
            problems.push(Problem::new("expiresIn", wrong_type(other, "a duration like \"90d\" or \"1h\"")));
            default
        }
    };
    let read_only = match body.get("readOnly") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(Problem::new("readOnly", wrong_type(other, "true or false")));
            false
        }
    };
    Report::check(problems).map(|()| CredentialRequest { name, expires_in, read_only })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(report: Report) -> Vec<String> {
        report.problems().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_tenant_decodes_with_its_defaults_and_every_problem_is_reported() {
        let (id, config) =
            decode_tenant(&json!({"id": "acme", "name": "Acme", "grants": {"serviceId": ["s1", "s1", "s2"]}})).unwrap();
        assert_eq!(id.as_deref(), Some("acme"));
        assert_eq!(config.grants["serviceId"], ["s1", "s2"]);
        assert_eq!((config.max_webhooks, config.disabled), (DEFAULT_MAX_WEBHOOKS, false));
        let report = decode_tenant(
            &json!({"id": "a b", "grants": {"serviceId": "s1", "x": [""]}, "maxWebhooks": -1, "owner": 1}),
        )
        .unwrap_err();
        assert_eq!(
            problems(report),
            [
                "id: \"a b\" is not an id: 1 to 64 letters, digits, _ or -",
                "owner: is not a tenant field; known fields: name, grants, maxWebhooks, disabled",
                "name: is missing, expected the tenant's name",
                "grants.serviceId: \"s1\" is a string, expected an array of attribute values",
                "grants.x[0]: is empty, expected a value",
                "maxWebhooks: -1 is not a whole number from 0 to 10000",
            ]
        );
    }

    #[test]
    fn credential_requests_take_their_defaults_and_refuse_a_lifetime_past_the_limit() {
        let token = decode_token_request(&json!({"name": "ci", "expiresIn": "30d", "readOnly": true})).unwrap();
        assert_eq!((token.expires_in, token.read_only), (Duration::from_secs(30 * 86_400), true));
        assert_eq!(decode_token_request(&json!({"name": "ci"})).unwrap().expires_in, TOKEN_LIFETIME.0);
        assert_eq!(decode_portal_link_request(&json!({})).unwrap().expires_in, Duration::from_secs(3600));
        assert_eq!(decode_portal_link_request(&Value::Null).unwrap().name, "portal link");
        let report = decode_portal_link_request(&json!({"expiresIn": "8d", "name": "x"})).unwrap_err();
        assert_eq!(
            problems(report),
            [
                "name: is not a field here; known fields: expiresIn, readOnly",
                "expiresIn: \"8d\" is out of range: more than 0, at most 7days"
            ]
        );
        assert!(decode_token_request(&json!({"name": "ci", "expiresIn": "soon"})).is_err());
    }
}
