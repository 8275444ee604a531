//! A source: where a provider posts its webhooks (`POST /api/v1/in/{id}`) and how they are verified, as the API
//! takes it: `{"id", "verify": {"type", "secrets": [...], ...}, "tolerance": "5m", "disabled"}`. Decoded with
//! every problem and where it is; a secret is never quoted.

use super::verify::{Algorithm, Encoding, HmacScheme, Locator, Verify};
use crate::model::{join, optional_string, quote, unknown_keys, up_to, wrong_type, Problem, Report, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The fields of a source.
pub const SOURCE_FIELDS: [&str; 4] = ["id", "verify", "tolerance", "disabled"];

/// How far a signed timestamp may be from now, by default: what Stripe and Standard Webhooks use.
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
const MAX_TOLERANCE: Duration = Duration::from_secs(3600);

/// A source as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its events are named `<id>:<provider event type>`.
    pub id: String,
    pub verify: Verify,
    pub tolerance: Duration,
    pub disabled: bool,
}

impl Source {
    /// The name of the event a request of type `event_type` publishes.
    pub fn event_name(&self, event_type: &str) -> String {
        format!("{}:{event_type}", self.id)
    }
}

/// A tolerance: a whole number (no leading zero) of `s`, `m` or `h`, from 1s to 1h.
fn parse_tolerance(text: &str) -> Option<Duration> {
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    let whole = !digits.is_empty() && !digits.starts_with('0') && digits.len() <= 4;
    if !whole || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let tolerance = Duration::from_secs(digits.parse::<u64>().ok()? * unit);
    (tolerance <= MAX_TOLERANCE).then_some(tolerance)
}

/// What [`parse_tolerance`] reads, as a regular expression.
fn tolerance_pattern() -> String {
    format!("^(({})s|({})m|({})h)$", up_to(3600), up_to(60), up_to(1))
}

/// An HTTP header name (a token), as `http` reads one.
const HEADER_PATTERN: &str = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/// A source as stored: the API's body it was decoded from (its secrets inside, sealed at rest by the handler's
/// store), and when it was made and last changed. `Debug` never shows the body.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRecord {
    pub id: String,
    pub config: Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord").field("id", &self.id).finish_non_exhaustive()
    }
}

impl SourceRecord {
    /// The source it describes (decoded again: what was stored passed the same checks).
    pub fn source(&self) -> Result<Source, Report> {
        decode_source(&self.config)
    }

    /// Its secrets, to seal or open in place.
    pub fn secrets_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let secrets = self.config.get_mut("verify").and_then(|v| v.get_mut("secrets")).and_then(Value::as_array_mut);
        secrets.into_iter().flatten().filter_map(|secret| match secret {
            Value::String(text) => Some(text),
            _ => None,
        })
    }

    /// What the API shows: the body without its secrets (how many there are instead), and its times.
    pub fn view(&self) -> Value {
        let mut view = self.config.clone();
        if let Some(verify) = view.get_mut("verify").and_then(Value::as_object_mut) {
            let count = verify.remove("secrets").and_then(|s| s.as_array().map(Vec::len)).unwrap_or(0);
            verify.insert("secretCount".to_owned(), Value::from(count));
        }
        view
    }
}

/// The JSON Schema of a source as the API takes it (`schemas/source.json`); what [`decode_source`] checks.
/// Without `id` (`with_id` false): a replacement's, whose id is its path's.
pub fn source_schema(with_id: bool) -> Value {
    let secrets = json!({"type": "array", "minItems": 1, "maxItems": 2, "writeOnly": true,
        "items": {"type": "string", "minLength": 1},
        "description": "The signing secret, or two during a rotation (either verifies). Never shown again."});
    // Canonical base64 of 24 to 64 bytes, exactly what `Secret::parse` takes: whole quads (24 to 63 bytes), or a
    // last quad of one byte (`xy==`, y's low bits zero) or of two (`xyz=`, z's low bits zero).
    let quad = "[A-Za-z0-9+/]{4}";
    let key = format!(
        "^whsec_(?:(?:{quad}){{8,21}}|(?:{quad}){{8,21}}[A-Za-z0-9+/][AQgw]==|(?:{quad}){{8,20}}[A-Za-z0-9+/]{{2}}[AEIMQUYcgkosw048]=)$"
    );
    let whsec = json!({"type": "array", "minItems": 1, "maxItems": 2, "writeOnly": true,
        "items": {"type": "string", "pattern": key},
        "description": "whsec_ secrets (base64 of 24 to 64 bytes), one or two."});
    let locator = |default: &str| {
        let header = json!({"type": "object", "required": ["header"], "additionalProperties": false,
            "properties": {"header": {"type": "string", "pattern": HEADER_PATTERN}}});
        let body = json!({"type": "object", "required": ["body"], "additionalProperties": false,
            "properties": {"body": {"type": "string", "pattern": "^[^.]+(\\.[^.]+)*$"}}});
        let description = format!(
            "Where the request says it: a header, or a path in the JSON body (default: the body's {default:?})."
        );
        json!({"description": description, "oneOf": [{"type": "null"}, header, body]})
    };
    let header = json!({"type": "string", "pattern": HEADER_PATTERN});
    let optional =
        |schema: Value, description: &str| json!({"anyOf": [{"type": "null"}, schema], "description": description});
    let scheme = |kind: &str, description: &str, mut properties: Map<String, Value>, required: &[&str]| {
        properties.insert("type".to_owned(), json!({"const": kind}));
        let mut required: Vec<&str> = required.to_vec();
        required.insert(0, "type");
        json!({"title": kind, "description": description, "type": "object", "additionalProperties": false,
            "required": required, "properties": properties})
    };
    let fields =
        |pairs: Vec<(&str, Value)>| pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<String, Value>>();
    let located = |mut pairs: Vec<(&str, Value)>| {
        pairs.extend([("eventType", locator("type")), ("eventId", locator("id"))]);
        fields(pairs)
    };
    let variants = vec![
        scheme(
            "stripe",
            "Stripe-Signature (t=, v1=): HMAC-SHA256 of \"{t}.{body}\"; type and id from the body.",
            fields(vec![("secrets", secrets.clone())]),
            &["secrets"],
        ),
        scheme(
            "github",
            "X-Hub-Signature-256: HMAC-SHA256 of the body; type from X-GitHub-Event.",
            fields(vec![("secrets", secrets.clone())]),
            &["secrets"],
        ),
        scheme(
            "standard-webhooks",
            "webhook-id, webhook-timestamp, webhook-signature (v1,): what this dispatcher sends.",
            fields(vec![("secrets", whsec)]),
            &["secrets"],
        ),
        scheme(
            "hmac",
            "A provider's own HMAC header.",
            located(vec![
                ("secrets", secrets.clone()),
                ("header", header.clone()),
                ("algorithm", optional(json!({"enum": ["sha256", "sha512"]}), "sha256 (the default) or sha512")),
                ("encoding", optional(json!({"enum": ["hex", "base64"]}), "hex (the default) or base64")),
                ("prefix", optional(json!({"type": "string"}), "Before the signature in the header, e.g. sha256=")),
                (
                    "timestampHeader",
                    optional(header.clone(), "A header with the Unix time, signed as \"{timestamp}.{body}\""),
                ),
            ]),
            &["secrets", "header"],
        ),
        scheme(
            "basic",
            "HTTP Basic authentication.",
            located(vec![("username", json!({"type": "string", "pattern": "^[^:]+$"})), ("secrets", secrets.clone())]),
            &["username", "secrets"],
        ),
        scheme(
            "api-key",
            "A key in a header.",
            located(vec![("header", header), ("secrets", secrets)]),
            &["header", "secrets"],
        ),
    ];
    let mut schema = json!({
        "title": "Source",
        "description": "Where a provider posts its webhooks (POST /api/v1/in/{id}) and how they are verified.",
        "type": "object",
        "additionalProperties": false,
        "required": ["id", "verify"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "description": "Names the endpoint and starts its events' names: <id>:<provider event type>."},
            "verify": {"oneOf": variants},
            "tolerance": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": tolerance_pattern()}], "examples": ["5m"],
                "description": "How far a signed timestamp may be from now, 1s to 1h (default 5m)."},
            "disabled": {"type": ["boolean", "null"], "description": "A disabled source answers 404 and publishes nothing."}
        }
    });
    if !with_id {
        schema["title"] = Value::from("Source configuration");
        schema["required"] = json!(["verify"]);
        schema["properties"].as_object_mut().map(|p| p.remove("id"));
        // A replacement's secrets may be left out: the stored ones are kept.
        for variant in schema["properties"]["verify"]["oneOf"].as_array_mut().into_iter().flatten() {
            if let Some(required) = variant["required"].as_array_mut() {
                required.retain(|r| r != "secrets");
            }
        }
    }
    schema
}

/// Decodes a source from the API's body, with every problem.
pub fn decode_source(body: &Value) -> Result<Source, Report> {
    // Not quoted: it may be a secret sent in the wrong place.
    let Value::Object(fields) = body else {
        return Err(Report::single("body", r#"is not an object, expected a source {"id": ..., "verify": {...}}"#));
    };
    let mut problems: Vec<Problem> = unknown_keys(fields, "", &SOURCE_FIELDS, "field of a source", "fields").collect();
    let id = optional_string(fields.get("id"), "id", &mut problems).unwrap_or_default();
    if !super::received::valid_source_id(&id) {
        problems
            .push(Problem::new("id", "must be 1 to 64 ASCII letters, digits, - or _ (it starts its events' names)"));
    }
    let verify = decode_verify(fields.get("verify"), &mut problems);
    let tolerance = match fields.get("tolerance") {
        None | Some(Value::Null) => DEFAULT_TOLERANCE,
        Some(Value::String(text)) => match parse_tolerance(text) {
            Some(tolerance) => tolerance,
            None => {
                problems.push(Problem::new(
                    "tolerance",
                    format!("{} is not a duration from 1s to 1h", quote(&Value::from(text.as_str()))),
                ));
                DEFAULT_TOLERANCE
            }
        },
        Some(other) => {
            problems.push(Problem::new("tolerance", wrong_type(other, "a duration such as \"5m\"")));
            DEFAULT_TOLERANCE
        }
    };
    let disabled = match fields.get("disabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(disabled)) => *disabled,
        Some(other) => {
            problems.push(Problem::new("disabled", wrong_type(other, "true or false")));
            false
        }
    };
    Report::check(problems)?;
    let verify = verify.ok_or_else(|| Report::single("verify", "is invalid"))?;
    Ok(Source { id, verify, tolerance, disabled })
}

const EXPECTED: &str =
    r#"an object whose "type" is "stripe", "github", "standard-webhooks", "hmac", "basic" or "api-key""#;

fn decode_verify(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<Verify> {
    let Some(Value::Object(fields)) = value else {
        let found = if value.is_some() { "is not an object" } else { "is missing" };
        problems.push(Problem::new("verify", format!("{found}: {EXPECTED}")));
        return None;
    };
    let kind = fields.get("type").and_then(Value::as_str).unwrap_or_default();
    let known: &[&str] = match kind {
        "stripe" | "github" | "standard-webhooks" => &["type", "secrets"],
        "hmac" => {
            &["type", "secrets", "header", "algorithm", "encoding", "prefix", "timestampHeader", "eventType", "eventId"]
        }
        "basic" => &["type", "secrets", "username", "eventType", "eventId"],
        "api-key" => &["type", "secrets", "header", "eventType", "eventId"],
        _ => {
            problems.push(Problem::new("verify.type", format!("must be one of: {EXPECTED}")));
            return None;
        }
    };
    let before = problems.len();
    problems.extend(unknown_keys(fields, "verify", known, &format!("field of {kind} verification"), "fields"));
    let secrets = decode_secrets(fields.get("secrets"), problems);
    let text = |name: &str, problems: &mut Vec<Problem>| match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        _ => {
            problems.push(Problem::new(join("verify", name), "is missing or not a non-empty string"));
            String::new()
        }
    };
    let header = |name: &str, problems: &mut Vec<Problem>| {
        let text = text(name, problems);
        if !text.is_empty() {
            check_header(&text, &join("verify", name), problems);
        }
        text
    };
    let locator = |name: &str, default: &str, problems: &mut Vec<Problem>| {
        decode_locator(fields.get(name), &join("verify", name), default, problems)
    };
    let verify = match kind {
        "stripe" => Verify::Stripe { secrets },
        "github" => Verify::Github { secrets },
        "standard-webhooks" => {
            let mut keys = Vec::new();
            for (i, secret) in secrets.iter().enumerate() {
                match Secret::parse(secret) {
                    Ok(key) => keys.push(key),
                    Err(why) => problems.push(Problem::new(format!("verify.secrets[{i}]"), why)),
                }
            }
            Verify::StandardWebhooks { secrets: keys }
        }
        "hmac" => {
            let header = header("header", problems);
            let algorithm =
                one_of(fields, "algorithm", [("sha256", Algorithm::Sha256), ("sha512", Algorithm::Sha512)], problems);
            let encoding = one_of(fields, "encoding", [("hex", Encoding::Hex), ("base64", Encoding::Base64)], problems);
            let prefix = optional_string(fields.get("prefix"), "verify.prefix", problems);
            let timestamp_header = optional_string(fields.get("timestampHeader"), "verify.timestampHeader", problems);
            if let Some(name) = &timestamp_header {
                check_header(name, "verify.timestampHeader", problems);
            }
            let event_type = locator("eventType", "type", problems);
            let event_id = locator("eventId", "id", problems);
            Verify::Hmac(HmacScheme {
                header,
                algorithm,
                encoding,
                prefix,
                timestamp_header,
                secrets,
                event_type,
                event_id,
            })
        }
        "basic" => Verify::Basic {
            username: {
                let username = text("username", problems);
                if username.contains(':') {
                    problems.push(Problem::new("verify.username", "holds a colon, which Basic credentials cannot"));
                }
                username
            },
            passwords: secrets,
            event_type: locator("eventType", "type", problems),
            event_id: locator("eventId", "id", problems),
        },
        _ => Verify::ApiKey {
            header: header("header", problems),
            keys: secrets,
            event_type: locator("eventType", "type", problems),
            event_id: locator("eventId", "id", problems),
        },
    };
    (problems.len() == before).then_some(verify)
}

/// `verify.<name>`, one of two words: the first (the default) when absent, null or wrong (said in `problems`).
fn one_of<T: Copy>(
    fields: &Map<String, Value>,
    name: &str,
    [first, second]: [(&str, T); 2],
    problems: &mut Vec<Problem>,
) -> T {
    let path = join("verify", name);
    match optional_string(fields.get(name), &path, problems).as_deref() {
        Some(word) if word == second.0 => second.1,
        None => first.1,
        Some(word) if word == first.0 => first.1,
        Some(_) => {
            problems.push(Problem::new(path, format!("must be \"{}\" or \"{}\"", first.0, second.0)));
            first.1
        }
    }
}

/// A header name the source reads must be one HTTP can carry.
fn check_header(name: &str, path: &str, problems: &mut Vec<Problem>) {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        problems.push(Problem::new(path, format!("{} is not a valid HTTP header name", quote(&Value::from(name)))));
    }
}

/// One secret, or two during a rotation; never quoted.
fn decode_secrets(value: Option<&Value>, problems: &mut Vec<Problem>) -> Vec<String> {
    let secrets: Option<Vec<String>> = match value {
        Some(Value::Array(items)) if (1..=2).contains(&items.len()) => {
            items.iter().map(|item| item.as_str().filter(|s| !s.is_empty()).map(str::to_owned)).collect()
        }
        _ => None,
    };
    secrets.unwrap_or_else(|| {
        problems.push(Problem::new("verify.secrets", "must be one or two non-empty strings (two during a rotation)"));
        Vec::new()
    })
}

/// `{"header": "X-Event"}` or `{"body": "data.type"}`; `default` (a body path) when absent.
fn decode_locator(value: Option<&Value>, path: &str, default: &str, problems: &mut Vec<Problem>) -> Locator {
    let body = |text: &str| Locator::Body(text.split('.').map(str::to_owned).collect());
    let fields: &Map<String, Value> = match value {
        None | Some(Value::Null) => return body(default),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, r#"{"header": "<name>"} or {"body": "<path>"}"#)));
            return body(default);
        }
    };
    match (fields.len(), fields.get("header"), fields.get("body")) {
        (1, Some(Value::String(name)), None) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
            Locator::Header(name.clone())
        }
        (1, None, Some(Value::String(keys))) if keys.split('.').all(|k| !k.is_empty()) => body(keys),
        _ => {
            problems.push(Problem::new(path, r#"must be {"header": "<name>"} or {"body": "<path>"}"#));
            body(default)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_source_is_decoded_with_its_defaults() {
        let stripe =
            decode_source(&json!({"id": "stripe", "verify": {"type": "stripe", "secrets": ["whsec_a", "whsec_b"]}}))
                .unwrap();
        assert_eq!((stripe.tolerance, stripe.disabled), (Duration::from_secs(300), false));
        assert_eq!(stripe.event_name("customer.updated"), "stripe:customer.updated");
        let hmac = decode_source(&json!({"id": "shop", "tolerance": "2m", "verify": {"type": "hmac", "secrets": ["k"],
            "header": "X-Sig", "algorithm": "sha512", "encoding": "base64", "eventType": {"header": "X-Event"}}}))
        .unwrap();
        let Verify::Hmac(scheme) = hmac.verify else { panic!() };
        assert_eq!((scheme.algorithm, scheme.encoding), (Algorithm::Sha512, Encoding::Base64));
        assert_eq!(
            (scheme.event_type, scheme.event_id),
            (Locator::Header("X-Event".into()), Locator::Body(vec!["id".into()]))
        );
    }

    #[test]
    fn every_problem_is_named_with_its_place_and_no_secret_is_quoted() {
        let quoted = decode_source(&json!({"id": "s", "verify": "whsec_s3cret"})).unwrap_err().to_string();
        assert!(!quoted.contains("s3cret") && quoted.starts_with("verify: is not an object"), "{quoted}");
        let report = decode_source(&json!({"id": "a:b", "extra": 1, "tolerance": "2h", "disabled": "no",
            "verify": {"type": "standard-webhooks", "secrets": ["s3cret-not-whsec"], "header": "x"}}))
        .unwrap_err();
        let found: Vec<String> = report.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "extra: is not a field of a source; known fields: id, verify, tolerance, disabled",
                "id: must be 1 to 64 ASCII letters, digits, - or _ (it starts its events' names)",
                "verify.header: is not a field of standard-webhooks verification; known fields: type, secrets",
                "verify.secrets[0]: does not start with whsec_",
                r#"tolerance: "2h" is not a duration from 1s to 1h"#,
                r#"disabled: "no" is a string, expected true or false"#,
            ]
        );
        assert!(found.iter().all(|p| !p.contains("s3cret")));
        let three =
            decode_source(&json!({"id": "g", "verify": {"type": "github", "secrets": ["a", "b", "c"]}})).unwrap_err();
        assert_eq!(three.to_string(), "verify.secrets: must be one or two non-empty strings (two during a rotation)");
        let unknown = decode_source(&json!({"id": "x", "verify": {"type": "md5"}})).unwrap_err();
        assert!(unknown.to_string().starts_with("verify.type: must be one of"), "{unknown}");
        let locator =
            decode_source(&json!({"id": "k", "verify": {"type": "api-key", "secrets": ["k"], "header": "X-Key",
            "eventType": {"header": "a", "body": "b"}}}))
            .unwrap_err();
        assert_eq!(locator.to_string(), r#"verify.eventType: must be {"header": "<name>"} or {"body": "<path>"}"#);
    }
}
