//! Enrichers: what a mapping rule fetches before it runs (`hydrate`), once per event. An enricher is an HTTP
//! request built from the event (its URL template, its body template) and a judgement of the answer (a 2xx
//! with a JSON body that its `failWhen` pattern does not match). Both are plain functions here; the request
//! itself is the service's (I/O), through the same sender and target credentials as deliveries.

use super::payload::Event;
use crate::model::TargetAuth;
use crate::policy::filter::EventFilter;
pub use crate::request::Method;
use crate::request::{authorization, Header, Request};
use crate::template::Template;
use serde_json::Value;
use std::time::Duration;

/// The inputs of an enricher's body template.
pub const BODY_INPUTS: [&str; 1] = ["event"];

/// The largest answer read: the sender reads no more (`callback::RESPONSE_KEPT`, which a test keeps equal).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// One enricher of the catalog file, checked at load.
pub struct Enricher {
    pub name: String,
    pub method: Method,
    pub url: UrlTemplate,
    /// Sent as they are (values from the environment were put in at load).
    pub headers: Vec<(String, String)>,
    /// The JSON body, made from the event (`POST` only).
    pub body: Option<Template>,
    pub auth: Option<TargetAuth>,
    /// An answer (a 2xx's JSON body) matching this is a failure: GraphQL's `200 {"errors": [...]}`.
    pub fail_when: Option<EventFilter>,
    /// How long an answer is used again for the same request; zero: never.
    pub cache: Duration,
    /// How long the request may take, answer included.
    pub timeout: Duration,
}

impl std::fmt::Debug for Enricher {
    // Headers and credentials may hold secrets: named, never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("url", &self.url.text)
            .field("headers", &self.headers.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("auth", &self.auth.is_some())
            .finish_non_exhaustive()
    }
}

/// The request an enricher makes for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: Method,
    pub url: String,
    /// The JSON text of the body, for `POST`.
    pub body: Option<String>,
}

impl Call {
    /// What identifies its answer in the cache: the same request gets the same answer while it is fresh.
    pub fn cache_key(&self, enricher: &str) -> String {
        format!("{enricher}\n{} {}\n{}", self.method.as_str(), self.url, self.body.as_deref().unwrap_or_default())
    }
}

impl Enricher {
    /// The request for `event`. Fails only when the body template fails on this event.
    pub fn call(&self, event: &Event) -> Result<Call, String> {
        let url = self.url.render(event)?;
        let body = match &self.body {
            None => None,
            Some(template) => {
                let input = serde_json::to_value(event).unwrap_or_default();
                match template.render(&[("event", &input)]) {
                    Ok(Some(body)) => Some(body.to_string()),
                    Ok(None) => Some("null".to_owned()),
                    Err(error) => return Err(format!("its body template failed: {error}")),
                }
            }
        };
        Ok(Call { method: self.method, url, body })
    }

    /// The request of `call` at `now_ms`: the enricher's headers (each treated as a credential), its
    /// credentials, and the event's correlation id, so that the API it asks can follow the event.
    pub fn request<'a>(&'a self, call: &'a Call, correlation_id: Option<&'a str>, now_ms: i64) -> Request<'a> {
        let mut headers = Vec::with_capacity(3 + self.headers.len());
        let plain = |name: &'a str, value: &'a str| Header { name, value: value.into(), sensitive: false };
        if call.body.is_some() {
            headers.push(plain("content-type", "application/json"));
        }
        if let Some(correlation_id) = correlation_id {
            headers.push(plain("x-correlation-id", correlation_id));
        }
        headers.extend(self.headers.iter().map(|(name, value)| Header {
            name,
            value: value.as_str().into(),
            sensitive: true,
        }));
        if let Some(value) = self.auth.as_ref().and_then(authorization) {
            headers.push(Header { name: "authorization", value: value.into(), sensitive: true });
        }
        Request {
            method: call.method,
            url: &call.url,
            headers,
            body: call.body.as_deref().unwrap_or_default(),
            auth: self.auth.as_ref(),
            signed_at: now_ms.div_euclid(1000),
            at_ms: now_ms,
            guarded: false,
        }
    }

    /// What the answer to a call says: the JSON it holds, or why it is a failure (`status` is `None` when no
    /// answer came, and `text` then says why).
    pub fn answer(&self, status: Option<u16>, text: &str) -> Result<Value, String> {
        let Some(status) = status else { return Err(text.to_owned()) };
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}: {}", excerpt(text)));
        }
        if let Some(pattern) = &self.fail_when {
            if pattern.matches(text) {
                return Err(format!("the answer matches failWhen: {}", excerpt(text)));
            }
        }
        if text.len() >= MAX_ANSWER_BYTES {
            return Err(format!("the answer is larger than {} KiB", MAX_ANSWER_BYTES / 1024));
        }
        serde_json::from_str(text).map_err(|e| format!("the answer is not JSON ({e}): {}", excerpt(text)))
    }
}

/// The start of an answer, for a reason: enough to see what went wrong, on one line.
fn excerpt(text: &str) -> String {
    const KEPT: usize = 300;
    let line: String = text.chars().filter(|c| !c.is_control()).take(KEPT).collect();
    if text.chars().count() > KEPT {
        format!("{line}…")
    } else {
        line
    }
}

/// A URL with `{event.name}` and `{event.payload.<field>}` places, filled from the event and percent-encoded
/// (a value can never add a path segment or a query parameter), and `${NAME}` settings, read from the
/// environment at load. Places are only in the path or the query: the event never chooses the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    /// As written, settings unread: what may be shown (a setting may hold a secret).
    pub text: String,
    parts: Vec<UrlPart>,
    /// The scheme, host and port every URL it makes must have.
    origin: Option<url::Origin>,
}

/// A part of the URL; a place says whether it is in the query (after `?`) or the path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UrlPart {
    Text(String),
    EventName { in_query: bool },
    Field { field: String, in_query: bool },
}

impl UrlTemplate {
    /// Reads `text`, its settings from `env`; what is wrong, without a setting's value.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<UrlTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(start) = rest.find('{') {
            let Some(length) = rest[start..].find('}') else {
                return Err(format!("has a {{ at {} without its }}", text.len() - rest.len() + start));
            };
            let inside = &rest[start + 1..start + length];
            if start > 0 && rest.as_bytes()[start - 1] == b'$' {
                // A setting, read below: part of the fixed text, never a place.
                literal.push_str(&rest[..start + length + 1]);
            } else {
                literal.push_str(&rest[..start]);
                let in_query =
                    parts.iter().any(|p| matches!(p, UrlPart::Text(t) if t.contains('?'))) || literal.contains('?');
                parts.push(UrlPart::Text(std::mem::take(&mut literal)));
                parts.push(match inside.strip_prefix("event.payload.") {
                    _ if inside == "event.name" => UrlPart::EventName { in_query },
                    Some(field) if !field.is_empty() => UrlPart::Field { field: field.to_owned(), in_query },
                    _ => {
                        return Err(format!("has {{{inside}}}: a place is {{event.name}} or {{event.payload.<field>}}"))
                    }
                });
            }
            rest = &rest[start + length + 1..];
        }
        if rest.contains('}') {
            return Err("has a } without its {".to_owned());
        }
        literal.push_str(rest);
        parts.push(UrlPart::Text(literal));
        for part in &mut parts {
            if let UrlPart::Text(text) = part {
                let (read, unset) = read_settings(text, env);
                if let Some(first) = unset.into_iter().next() {
                    return Err(first);
                }
                *text = read;
            }
        }
        let mut template = UrlTemplate { text: text.to_owned(), parts, origin: None };
        template.origin = url::Url::parse(&template.sample()).ok().map(|url| url.origin());
        let UrlPart::Text(before) = &template.parts[0] else { unreachable!("parts start with text") };
        // What comes before the first place is the scheme, the host and the port, whole, and the path begins.
        let fixed = before.find("://").is_some_and(|at| before[at + 3..].contains(['/', '?']));
        if template.parts.len() > 1 && !fixed {
            return Err("has a place before its path: the scheme, the host and the port are fixed".to_owned());
        }
        Ok(template)
    }

    /// The fields of the event its places read.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            UrlPart::Field { field, .. } => Some(field.as_str()),
            _ => None,
        })
    }

    /// The URL with `x` in its places: what the loader checks is an http(s) URL.
    pub fn sample(&self) -> String {
        self.parts.iter().map(|part| if let UrlPart::Text(text) = part { text.as_str() } else { "x" }).collect()
    }

    /// The URL for `event`; why not, when a value would change the path (empty, `.` or `..` in a path
    /// segment) or the URL would not reach the host it was written for.
    pub fn render(&self, event: &Event) -> Result<String, String> {
        let mut url = String::with_capacity(self.text.len() + 32);
        for part in &self.parts {
            let (value, in_query) = match part {
                UrlPart::Text(text) => {
                    url.push_str(text);
                    continue;
                }
                UrlPart::EventName { in_query } => (event.name().to_owned(), *in_query),
                UrlPart::Field { field, in_query } => match event.payload.get(field) {
                    Some(Value::String(text)) => (text.clone(), *in_query),
                    Some(Value::Null) | None => (String::new(), *in_query),
                    Some(other) => (other.to_string(), *in_query),
                },
            };
            if !in_query && ["", ".", ".."].contains(&value.as_str()) {
                return Err(format!("a value of its URL's path is {value:?}, which would change the path"));
            }
            encode(&value, &mut url);
        }
        let reaches = url::Url::parse(&url).ok().map(|made| made.origin());
        if self.parts.len() > 1 && (reaches.is_none() || reaches != self.origin) {
            return Err("its URL would not reach the host it was written for".to_owned());
        }
        Ok(url)
    }
}

/// `text` with each `${NAME}` replaced by the environment variable `NAME`, and what is wrong: each one that is
/// not set (kept as written) or a `${` without its `}`. Never quotes a value.
pub(crate) fn read_settings(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
    let (mut out, mut problems) = (String::with_capacity(text.len()), Vec::new());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(length) = rest[start..].find('}') else {
            problems.push("has a ${ without its }".to_owned());
            return (out, problems);
        };
        let name = &rest[start + 2..start + length];
        match env(name) {
            Some(value) => out.push_str(&value),
            None => {
                problems.push(format!("names ${{{name}}}, an environment variable that is not set"));
                out.push_str(&rest[start..start + length + 1]);
            }
        }
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    (out, problems)
}

/// Percent-encodes all but RFC 3986's unreserved characters: a value stays one path segment or query value.
fn encode(value: &str, into: &mut String) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            into.push(byte as char);
        } else {
            into.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(request: &'a Request<'_>, name: &str) -> Option<&'a str> {
        request.headers.iter().find(|h| h.name == name).map(|h| h.value.as_ref())
    }

    fn parse(text: &str) -> Result<UrlTemplate, String> {
        UrlTemplate::parse(text, &|name| (name == "API").then(|| "https://crm.example/{s3cret}".to_owned()))
    }

    #[test]
    fn places_are_read_and_their_mistakes_named() {
        let url = parse("https://crm.example/customers/{event.payload.customerId}?e={event.name}").unwrap();
        assert_eq!(url.fields().collect::<Vec<_>>(), ["customerId"]);
        assert_eq!(url.sample(), "https://crm.example/customers/x?e=x");
        assert!(parse("https://x/{event.payload.id").unwrap_err().contains("without its }"));
        assert!(parse("https://x/{attributes.a}").unwrap_err().contains("{attributes.a}"));
        assert!(parse("https://x/}").is_err());
        assert!(parse("https://${NOPE}/x").unwrap_err().contains("${NOPE}, an environment variable that is not set"));
    }

    #[test]
    fn a_setting_is_read_at_load_and_kept_out_of_what_is_shown() {
        let url = parse("${API}/customers/{event.payload.id}").unwrap();
        assert_eq!(url.sample(), "https://crm.example/{s3cret}/customers/x", "a brace in a setting is not a place");
        assert_eq!(url.text, "${API}/customers/{event.payload.id}");
    }

    #[test]
    fn the_event_never_chooses_the_host_nor_climbs_the_path() {
        for host in [
            "https://{event.payload.h}/x",
            "https://api.{event.name}.example/x",
            "{event.name}",
            "https://a:{event.name}/",
        ] {
            assert!(parse(host).unwrap_err().contains("before its path"), "{host}");
        }
        let spec = crate::events::catalog::built_in().event("ping").unwrap();
        let event = |name: &str| {
            crate::events::Event::new(spec, crate::events::Payload::new(vec![("name", Value::from(name))]))
        };
        let url = parse("https://x.example/p/{event.payload.name}").unwrap();
        assert_eq!(url.render(&event("a b")).unwrap(), "https://x.example/p/a%20b");
        for climbing in [".", "..", ""] {
            assert!(url.render(&event(climbing)).unwrap_err().contains("would change the path"), "{climbing:?}");
        }
        let query = parse("https://x.example/p?name={event.payload.name}").unwrap();
        assert_eq!(query.render(&event(".")).unwrap(), "https://x.example/p?name=.", "a dot is a value in a query");
        // The parser skips extra slashes and reads backslashes as slashes: the place would be the host.
        for sneaky in
            ["https:///{event.payload.name}/x", "https:/\\/{event.payload.name}/x", "https://\\{event.payload.name}/x"]
        {
            let made = parse(sneaky).map(|url| url.render(&event("evil.example")));
            assert!(matches!(&made, Err(_) | Ok(Err(_))), "{sneaky}: {made:?}");
        }
    }

    #[test]
    fn values_are_percent_encoded_so_they_stay_one_segment() {
        let mut out = String::new();
        encode("a/b?c=d&e f~ü", &mut out);
        assert_eq!(out, "a%2Fb%3Fc%3Dd%26e%20f~%C3%BC");
    }

    fn enricher(fail_when: Option<&str>) -> Enricher {
        Enricher {
            name: "customer".to_owned(),
            method: Method::Get,
            url: parse("https://crm.example/c").unwrap(),
            headers: vec![("authorization".to_owned(), "Bearer s3cret".to_owned())],
            body: None,
            auth: None,
            fail_when: fail_when.map(|p| EventFilter::new(&serde_json::from_str(p).unwrap()).unwrap()),
            cache: Duration::ZERO,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn an_answer_is_json_from_a_2xx_that_fail_when_does_not_match() {
        let graphql = enricher(Some(r#"{"errors": [{"exists": true}]}"#));
        assert_eq!(graphql.answer(Some(200), r#"{"data": {"a": 1}}"#), Ok(serde_json::json!({"data": {"a": 1}})));
        let failed = graphql.answer(Some(200), r#"{"errors": [{"message": "no such customer"}]}"#).unwrap_err();
        assert!(failed.starts_with("the answer matches failWhen: ") && failed.contains("no such customer"), "{failed}");
        assert!(graphql.answer(Some(503), "busy").unwrap_err().starts_with("HTTP 503: busy"));
        assert!(graphql.answer(Some(200), "<html>").unwrap_err().starts_with("the answer is not JSON"));
        assert_eq!(graphql.answer(None, "timed out"), Err("timed out".to_owned()));
        let long = format!("\"{}\"", "a".repeat(MAX_ANSWER_BYTES));
        assert!(graphql.answer(Some(200), &long).unwrap_err().contains("larger than"));
    }

    #[test]
    fn its_debug_output_names_headers_without_their_values() {
        let shown = format!("{:?}", enricher(None));
        assert!(shown.contains("authorization") && !shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn an_enricher_s_request_carries_its_credentials_hidden_and_the_correlation_id() {
        let enricher = Enricher {
            name: "customer".into(),
            method: Method::Post,
            url: parse("https://crm.example/q").unwrap(),
            headers: vec![("x-api-key".into(), "k3y".into())],
            body: None,
            auth: Some(TargetAuth::Bearer { token: "t0k3n".into() }),
            fail_when: None,
            cache: std::time::Duration::ZERO,
            timeout: std::time::Duration::from_secs(1),
        };
        let call = Call { method: Method::Post, url: "https://crm.example/q".into(), body: Some("{}".into()) };
        let request = enricher.request(&call, Some("corr"), 1_700_000_000_999);
        assert_eq!((request.method, request.url, request.body), (Method::Post, "https://crm.example/q", "{}"));
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(header(&request, "x-correlation-id"), Some("corr"));
        assert_eq!(header(&request, "authorization"), Some("Bearer t0k3n"));
        assert_eq!((header(&request, "webhook-signature"), request.signature()), (None, None), "not a delivery");
        let printed = format!("{request:?}");
        assert!(!printed.contains("t0k3n") && !printed.contains("k3y"), "{printed}");
    }
}
