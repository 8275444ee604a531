//! Decoding an incoming message: bytes in, a validated [`Event`] or a report of every problem out.

use super::catalog::{self, EventSpec};
use super::payload::{Event, Payload};
use crate::validation::{join, quote, wrong_type, Problem, Report};
use serde_json::{Map, Value};

/// The largest incoming event accepted, in bytes (256 KiB, the Service Bus standard tier message size).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Decodes `{"name": ..., "payload": {...}}`. A missing or null payload is `{}`, as in the original system.
/// Payload keys the catalog does not document are dropped; everything else wrong is reported, all at once.
pub fn decode(bytes: &[u8]) -> Result<Event, Report> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Report::single(
            "body",
            format!("is {} bytes, over the limit of {MAX_EVENT_BYTES} bytes (256 KiB)", bytes.len()),
        ));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Report::single("body", format!("is not valid JSON: {e}")))?;
    decode_value(value)
}

/// Decodes an event that is already parsed JSON.
pub fn decode_value(value: Value) -> Result<Event, Report> {
    let Value::Object(mut body) = value else {
        return Err(Report::single("body", wrong_type(&value, r#"an object {"name": ..., "payload": {...}}"#)));
    };
    let mut problems = Vec::new();
    let spec = decode_name(body.get("name"), &mut problems);
    let payload = match body.remove("payload") {
        None | Some(Value::Null) => Some(Map::new()),
        Some(Value::Object(fields)) => Some(fields),
        Some(other) => {
            problems.push(Problem::new("payload", wrong_type(&other, "an object")));
            None
        }
    };
    let event = match (spec, payload) {
        (Some(spec), Some(fields)) => {
            decode_payload(spec, fields, &mut problems).map(|payload| Event { spec, payload })
        }
        _ => None,
    };
    match (event, Report::of(problems)) {
        (Some(event), None) => Ok(event),
        (_, Some(report)) => Err(report),
        (None, None) => unreachable!("an event is missing only when a problem was recorded"),
    }
}

fn decode_name(name: Option<&Value>, problems: &mut Vec<Problem>) -> Option<&'static EventSpec> {
    let known = || catalog::names(false).join(", ");
    let problem = match name {
        None => format!("is missing; known events: {}", known()),
        Some(Value::String(text)) => match catalog::event(text) {
            Some(spec) => return Some(spec),
            None => format!("{} is not a known event; known events: {}", quote(&Value::String(text.clone())), known()),
        },
        Some(other) => wrong_type(other, "an event name"),
    };
    problems.push(Problem::new("name", problem));
    None
}

fn decode_payload(
    spec: &'static EventSpec,
    mut fields: Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Option<Payload> {
    let before = problems.len();
    for field in spec.fields {
        let path = join("payload", field.name);
        match fields.get(field.name) {
            None => problems.push(Problem::new(path, format!("is missing, expected {}", field.ty.expected()))),
            Some(value) => {
                if let Err(reason) = field.ty.check(value) {
                    problems.push(Problem::new(path, reason));
                }
            }
        }
    }
    if problems.len() > before {
        return None;
    }
    // Keep the producer's key order: integrators see the fields as they were sent.
    let kept = fields.iter_mut().filter_map(|(key, value)| spec.field(key).map(|f| (f.name, value.take()))).collect();
    Some(Payload::new(kept))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(input: &[u8]) -> Vec<String> {
        decode(input).unwrap_err().problems().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn every_kind_of_bad_input_is_reported_with_its_path_and_value() {
        let cases: &[(&[u8], &[&str])] = &[
            (b"", &["body: is not valid JSON: EOF while parsing a value at line 1 column 0"]),
            (b"{\"name\": \"ping\",", &["body: is not valid JSON: EOF while parsing a value at line 1 column 16"]),
            (b"[1,2]", &[r#"body: [1,2] is an array, expected an object {"name": ..., "payload": {...}}"#]),
            (b"\"ping\"", &[r#"body: "ping" is a string, expected an object {"name": ..., "payload": {...}}"#]),
            (b"{}", &["name: is missing; known events: ping, service:subscribed, ping:all, profile:completed, profile:service-preferences-changed"]),
            (br#"{"name": 7}"#, &["name: 7 is a number, expected an event name"]),
            (br#"{"name": "ping:some"}"#, &[r#"name: "ping:some" is not a known event; known events: ping, service:subscribed, ping:all, profile:completed, profile:service-preferences-changed"#]),
            (br#"{"name": "ping", "payload": []}"#, &["payload: [] is an array, expected an object"]),
            (br#"{"name": "nope", "payload": 3}"#, &[
                r#"name: "nope" is not a known event; known events: ping, service:subscribed, ping:all, profile:completed, profile:service-preferences-changed"#,
                "payload: 3 is a number, expected an object",
            ]),
            (br#"{"name": "ping"}"#, &["payload.name: is missing, expected a non-empty string"]),
            (br#"{"name": "ping", "payload": {"name": ""}}"#, &[r#"payload.name: "" is not a non-empty string"#]),
            (br#"{"name": "service:subscribed", "payload": {"fiscalCode": "abc", "serviceId": 12}}"#, &[
                r#"payload.fiscalCode: "abc" is not a valid fiscal code (e.g. "AAABBB00A00A000B")"#,
                "payload.serviceId: 12 is a number, expected a non-empty string",
            ]),
            (br#"{"name": "profile:service-preferences-changed", "payload": {"fiscalCode": "AAABBB00A00A000B", "servicePreferencesMode": "auto", "oldServicePreferencesMode": null}}"#, &[
                r#"payload.servicePreferencesMode: "auto" is not one of "LEGACY", "AUTO", "MANUAL""#,
                r#"payload.oldServicePreferencesMode: is null, expected one of "LEGACY", "AUTO", "MANUAL""#,
            ]),
        ];
        for (input, expected) in cases {
            assert_eq!(problems(input), *expected, "input: {}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn bodies_over_256_kib_are_refused_before_parsing() {
        let mut big = br#"{"name":"ping","payload":{"name":""#.to_vec();
        big.resize(MAX_EVENT_BYTES + 1 - 3, b'a');
        big.extend_from_slice(br#""}}"#);
        assert_eq!(problems(&big), ["body: is 262145 bytes, over the limit of 262144 bytes (256 KiB)"]);
        big.remove(40);
        assert_eq!(decode(&big).unwrap().name(), "ping", "exactly 256 KiB is accepted");
    }

    #[test]
    fn a_missing_or_null_payload_is_an_empty_one() {
        for input in [&br#"{"name":"ping:all"}"#[..], br#"{"name":"ping:all","payload":null}"#] {
            let event = decode(input).unwrap();
            assert_eq!(event.name(), "ping:all");
            assert!(event.payload.is_empty());
        }
    }

    #[test]
    fn undocumented_keys_are_dropped_and_the_order_of_the_others_is_kept() {
        let event = decode(
            br#"{"name":"service:subscribed","extra":1,"payload":{"serviceId":"S1","internal":{"x":1},"fiscalCode":"AAABBB00A00A000B"}}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"name":"service:subscribed","payload":{"serviceId":"S1","fiscalCode":"AAABBB00A00A000B"}}"#
        );
    }

    #[test]
    fn valid_events_of_every_kind_decode() {
        let inputs = [
            json!({"name": "ping", "payload": {"name": "wh1"}}),
            json!({"name": "service:subscribed", "payload": {"fiscalCode": "AAABBB00A00A000B", "serviceId": "s"}}),
            json!({"name": "ping:all"}),
            json!({"name": "profile:completed", "payload": {"fiscalCode": "AAABBB00A00A000B", "servicePreferencesMode": "AUTO"}}),
            json!({"name": "profile:service-preferences-changed", "payload": {"fiscalCode": "AAABBB00A00A000B",
                   "servicePreferencesMode": "MANUAL", "oldServicePreferencesMode": "LEGACY"}}),
        ];
        for input in inputs {
            let event = decode(input.to_string().as_bytes()).unwrap();
            assert_eq!(
                serde_json::to_value(&event).unwrap()["payload"],
                input.get("payload").cloned().unwrap_or(json!({}))
            );
        }
    }
}
