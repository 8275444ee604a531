//! Decoding what an operator writes about a tenant, and what is asked of a token or a portal link, with every
//! problem reported at once, each with its path.

use crate::model::{
    quote, unknown_keys, up_to, whole, wrong_type, Problem, Report, TenantConfig, DEFAULT_MAX_WEBHOOKS,
};
use crate::webhooks::registration::with_id;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const FIELDS: [&str; 4] = ["name", "grants", "maxWebhooks", "disabled"];

/// The most webhooks a tenant may be allowed.
pub const MAX_WEBHOOKS_LIMIT: u32 = 10_000;

impl TenantConfig {
    /// Refuses a merge patch naming a field a tenant does not have.
    pub fn check_patch(patch: &Value) -> Result<(), Report> {
        crate::model::unknown_patch_keys(patch, &FIELDS, "tenant")
    }

    /// Decodes a tenant's configuration, reporting every problem with its path.
    pub fn decode(value: &Value) -> Result<TenantConfig, Report> {
        let Value::Object(body) = value else {
            return Err(Report::single("body", wrong_type(value, "an object")));
        };
        let mut problems = Vec::new();
        problems.extend(unknown_keys(body, "", &FIELDS, "tenant field", "fields"));
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
        Some(Value::Number(n)) if whole(n).is_some_and(|n| n <= u64::from(MAX_WEBHOOKS_LIMIT)) => {
            whole(n).unwrap_or(0) as u32
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
    with_id(value, true, TenantConfig::decode)
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

/// The seconds of each unit a lifetime may be written in.
const UNITS: [(char, u64); 4] = [('s', 1), ('m', 60), ('h', 3_600), ('d', 86_400)];

/// A lifetime: a whole number (no leading zero) and a unit, `s`, `m`, `h` or `d`.
fn lifetime(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let (_, seconds) = UNITS.iter().find(|(u, _)| *u == unit)?;
    let digits = &text[..text.len() - 1];
    let valid = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| Duration::from_secs(digits.parse::<u64>().unwrap_or(0).saturating_mul(*seconds)))
}

/// The pattern of the lifetimes up to `max`: what [`lifetime`] reads, within range, as a regular expression.
pub fn lifetime_pattern(max: Duration) -> String {
    let units: Vec<String> =
        UNITS.iter().map(|(unit, seconds)| format!("({}){unit}", up_to(max.as_secs() / seconds))).collect();
    format!("^({})$", units.join("|"))
}

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
    let Value::Object(body) = value else { return Err(Report::single("body", wrong_type(value, "an object"))) };
    let mut problems = Vec::new();
    problems.extend(unknown_keys(body, "", fields, "field here", "fields"));
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
    let expires_in = match body.get("expiresIn") {
        None | Some(Value::Null) => default,
        Some(Value::String(text)) => {
            let quoted = quote(&Value::String(text.clone()));
            match lifetime(text) {
                Some(duration) if !duration.is_zero() && duration <= max => duration,
                Some(_) => {
                    let limit = max.as_secs() / 86_400;
                    problems.push(Problem::new("expiresIn", format!("{quoted} is out of range: at most {limit}d")));
                    default
                }
                None => {
                    let problem = format!("{quoted} is not a whole number of s, m, h or d, like \"90d\" or \"1h\"");
                    problems.push(Problem::new("expiresIn", problem));
                    default
                }
            }
        }
        Some(other) => {
            problems.push(Problem::new("expiresIn", wrong_type(other, "a duration like \"90d\" or \"1h\"")));
            default
        }
    };
    // A portal link, shown to people, reads only unless asked; a token, for a program, may change things.
    let read_only = match body.get("readOnly") {
        None | Some(Value::Null) => !fields.contains(&"name"),
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
        assert_eq!(decode_portal_link_request(&json!({})).unwrap().name, "portal link");
        assert!(decode_portal_link_request(&json!({})).unwrap().read_only, "a portal link reads only unless asked");
        assert!(!decode_token_request(&json!({"name": "ci"})).unwrap().read_only, "a token may change things");
        assert!(decode_portal_link_request(&Value::Null).is_err(), "a body that is not an object");
        let report = decode_portal_link_request(&json!({"expiresIn": "8d", "name": "x"})).unwrap_err();
        assert_eq!(
            problems(report),
            [
                "name: is not a field here; known fields: expiresIn, readOnly",
                "expiresIn: \"8d\" is out of range: at most 7d"
            ]
        );
        assert!(decode_token_request(&json!({"name": "ci", "expiresIn": "soon"})).is_err());
        assert!(decode_token_request(&json!({"name": "ci", "expiresIn": "1h30m"})).is_err(), "one unit");
        assert!(decode_token_request(&json!({"name": "ci", "expiresIn": "090d"})).is_err(), "no leading zero");
    }

    #[test]
    fn the_lifetime_pattern_matches_exactly_the_lifetimes_in_range() {
        let max = Duration::from_secs(7 * 86_400);
        let pattern = lifetime_pattern(max);
        assert!(pattern.contains("(1[0-5][0-9]|16[0-7]|168)h") || pattern.contains("168)h"), "{pattern}");
        // Every number of each unit, by brute force against the pattern's alternatives for that unit.
        for (unit, seconds) in UNITS {
            let alternatives = up_to(max.as_secs() / seconds);
            for n in 1..=(max.as_secs() / seconds + 20).min(20_000) {
                let text = n.to_string();
                let matched = alternatives.split('|').any(|alt| matches_simple(alt, &text));
                assert_eq!(matched, n <= max.as_secs() / seconds, "{n}{unit}");
                assert_eq!(lifetime(&format!("{n}{unit}")), Some(Duration::from_secs(n * seconds)));
            }
        }
    }

    /// Whether `text` matches `alt`, one alternative of [`up_to`]: literal digits, `[a-b]` and `[0-9]{n}`.
    fn matches_simple(alt: &str, text: &str) -> bool {
        let (mut pattern, mut chars) = (alt, text.chars());
        while !pattern.is_empty() {
            if let Some(rest) = pattern.strip_prefix('[') {
                let (class, rest) = rest.split_once(']').unwrap();
                let (low, high) = (class.chars().next().unwrap(), class.chars().nth(2).unwrap());
                let (count, rest) = match rest.strip_prefix('{') {
                    Some(rest) => {
                        let (n, rest) = rest.split_once('}').unwrap();
                        (n.parse::<usize>().unwrap(), rest)
                    }
                    None => (1, rest),
                };
                for _ in 0..count {
                    match chars.next() {
                        Some(c) if (low..=high).contains(&c) => {}
                        _ => return false,
                    }
                }
                pattern = rest;
            } else {
                let c = pattern.chars().next().unwrap();
                if chars.next() != Some(c) {
                    return false;
                }
                pattern = &pattern[1..];
            }
        }
        chars.next().is_none()
    }
}
