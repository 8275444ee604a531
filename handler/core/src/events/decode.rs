//! Decoding an incoming message: bytes in, a validated [`Event`] or a report of every problem out.

use super::catalog::{self, EventSpec};
use super::payload::{Event, Payload};
use crate::inbound::received::{valid_event_type, valid_source_id, RECEIVED_FROM};
use crate::model::{join, quote, wrong_type, Problem, Report};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

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
    // Fast path: one pass over the bytes, borrowing what can be borrowed. Anything it does not expect (not an
    // object, a name that is not a string, a payload that is not an object, a member twice, bad JSON) goes
    // through the general path, which also words the report.
    match serde_json::from_slice::<Members>(bytes) {
        Ok(Members { name, payload }) => validate(
            name.map_or(Name::Missing, Name::Text),
            PayloadMember::Fields(payload.map(|FieldList(fields)| fields).unwrap_or_default()),
        ),
        Err(_) => {
            let value: Value =
                serde_json::from_slice(bytes).map_err(|e| Report::single("body", format!("is not valid JSON: {e}")))?;
            decode_value(value)
        }
    }
}

/// Decodes an event that is already parsed JSON.
pub fn decode_value(value: Value) -> Result<Event, Report> {
    let Value::Object(mut body) = value else {
        return Err(Report::single("body", wrong_type(&value, r#"an object {"name": ..., "payload": {...}}"#)));
    };
    if let Some(source) = body.remove(RECEIVED_FROM) {
        return decode_received(source, body);
    }
    let name = match body.remove("name") {
        None => Name::Missing,
        Some(Value::String(text)) => Name::Text(Cow::Owned(text)),
        Some(other) => Name::Other(other),
    };
    let payload = match body.remove("payload") {
        None | Some(Value::Null) => PayloadMember::Fields(Vec::new()),
        Some(Value::Object(fields)) => {
            PayloadMember::Fields(fields.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect())
        }
        Some(other) => PayloadMember::Other(other),
    };
    validate(name, payload)
}

/// An event a source received (`inbound::received`): the catalog's event of that name when it declares one
/// (its mapping rules then apply), otherwise the provider's body as it came.
fn decode_received(source: Value, mut body: serde_json::Map<String, Value>) -> Result<Event, Report> {
    let Value::String(source) = source else {
        return Err(Report::single(RECEIVED_FROM, wrong_type(&source, "a source's id")));
    };
    if !valid_source_id(&source) {
        return Err(Report::single(RECEIVED_FROM, "is not a source's id (1 to 64 ASCII letters, digits, - or _)"));
    }
    let name = match body.remove("name") {
        Some(Value::String(name)) => name,
        other => return Err(Report::single("name", wrong_type(&other.unwrap_or(Value::Null), "an event name"))),
    };
    let event_type = name.strip_prefix(source.as_str()).and_then(|rest| rest.strip_prefix(':'));
    if !event_type.is_some_and(valid_event_type) {
        let expected = format!("\"{source}:<event type>\" (a type of 1 to 200 printable ASCII characters)");
        return Err(Report::single("name", format!("{} is not {expected}", quote(&Value::String(name)))));
    }
    let payload = body.remove("payload").unwrap_or(Value::Null);
    match catalog::current().event(&name) {
        None => return Ok(Event::received(&name, payload)),
        // What a provider says reaches integrators (tenants' included) only through a rule of the operator's.
        Some(spec) if spec.is_public() => {
            let why = "is a public event of the catalog: a source's event becomes one through a mapping rule only";
            return Err(Report::single("name", format!("{} {why}", quote(&Value::String(name)))));
        }
        Some(_) => {}
    }
    let payload = match payload {
        Value::Null => PayloadMember::Fields(Vec::new()),
        Value::Object(fields) => PayloadMember::Fields(fields.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect()),
        other => PayloadMember::Other(other),
    };
    validate(Name::Text(Cow::Owned(name)), payload)
}

/// The `name` member as sent.
enum Name<'a> {
    Missing,
    Text(Cow<'a, str>),
    Other(Value),
}

/// The `payload` member as sent: its fields in order, or something that is not an object.
enum PayloadMember<'a> {
    Fields(Vec<(Cow<'a, str>, Value)>),
    Other(Value),
}

fn validate(name: Name<'_>, payload: PayloadMember<'_>) -> Result<Event, Report> {
    let mut problems = Vec::new();
    let spec = decode_name(name, &mut problems);
    let fields = match payload {
        PayloadMember::Fields(fields) => Some(fields),
        PayloadMember::Other(other) => {
            problems.push(Problem::new("payload", wrong_type(&other, "an object")));
            None
        }
    };
    let event = match (spec, fields) {
        (Some(spec), Some(fields)) => {
            decode_payload(spec, fields, &mut problems).map(|payload| Event::new(spec, payload))
        }
        _ => None,
    };
    match (event, Report::of(problems)) {
        (Some(event), None) => Ok(event),
        (_, Some(report)) => Err(report),
        (None, None) => unreachable!("an event is missing only when a problem was recorded"),
    }
}

fn decode_name(name: Name<'_>, problems: &mut Vec<Problem>) -> Option<&'static EventSpec> {
    let catalog = catalog::current();
    let known = || catalog.names(false).join(", ");
    let problem = match name {
        Name::Missing => format!("is missing; known events: {}", known()),
        Name::Text(text) => match catalog.event(&text) {
            Some(spec) => return Some(spec),
            None => {
                format!("{} is not a known event; known events: {}", quote(&Value::String(text.into_owned())), known())
            }
        },
        Name::Other(other) => wrong_type(&other, "an event name"),
    };
    problems.push(Problem::new("name", problem));
    None
}

fn decode_payload(
    spec: &'static EventSpec,
    fields: Vec<(Cow<'_, str>, Value)>,
    problems: &mut Vec<Problem>,
) -> Option<Payload> {
    let before = problems.len();
    for field in &spec.fields {
        // The last of duplicate keys wins, as in any JSON object reader.
        let checked = match fields.iter().rev().find(|(key, _)| *key == field.name) {
            None if !field.required => Ok(()),
            None => Err(format!("is missing, expected {}", field.ty.expected())),
            Some((_, value)) => field.ty.check(value).map_err(|invalid| invalid.to_string()),
        };
        if let Err(reason) = checked {
            problems.push(Problem::new(join("payload", &field.name), reason));
        }
    }
    if problems.len() > before {
        return None;
    }
    // Keep the producer's key order: integrators see the fields as they were sent.
    let mut kept: Vec<(&'static str, Value)> = Vec::with_capacity(spec.fields.len());
    for (key, value) in fields {
        let Some(field) = spec.field(&key) else { continue };
        match kept.iter_mut().find(|(k, _)| *k == field.name) {
            Some(slot) => slot.1 = value,
            None => kept.push((field.name.as_str(), value)),
        }
    }
    Some(Payload::new(kept))
}

/// The two members of a well-formed message, read in one pass.
struct Members<'a> {
    name: Option<Cow<'a, str>>,
    /// `None` when absent or null.
    payload: Option<FieldList<'a>>,
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut name, mut payload, mut seen_payload) = (None, None, false);
                while let Some(key) = map.next_key_seed(Key)? {
                    match key.as_ref() {
                        "name" if name.is_none() => name = Some(map.next_value_seed(Key)?),
                        "payload" if !seen_payload => {
                            seen_payload = true;
                            payload = map.next_value::<Option<FieldList<'de>>>()?;
                        }
                        "name" | "payload" => return Err(serde::de::Error::custom("duplicate member")),
                        // A received event: the general path reads it.
                        RECEIVED_FROM => return Err(serde::de::Error::custom("received")),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(Members { name, payload })
            }
        }
        deserializer.deserialize_map(Object)
    }
}

/// A JSON object read as its fields in order, keys borrowed from the input when they have no escapes.
struct FieldList<'a>(Vec<(Cow<'a, str>, Value)>);

impl<'de> Deserialize<'de> for FieldList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = FieldList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(4));
                while let Some(key) = map.next_key_seed(Key)? {
                    fields.push((key, map.next_value::<Value>()?));
                }
                Ok(FieldList(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// An object key, borrowed when possible.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }
    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn problems(input: &[u8]) -> Vec<String> {
        decode(input).unwrap_err().problems().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn a_received_event_keeps_the_providers_body_unless_the_catalog_declares_its_name() {
        let message = crate::inbound::received::message("stripe", "customer.updated", br#"{"id": "evt_1", "n": [1]}"#);
        let event = decode(&message).unwrap();
        assert_eq!((event.name(), event.spec()), ("stripe:customer.updated", None));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"name": "stripe:customer.updated", "payload": {"id": "evt_1", "n": [1]}})
        );
        // Without `receivedFrom`, a name outside the catalog is refused as ever.
        assert!(decode(br#"{"name": "stripe:customer.updated", "payload": {}}"#).is_err());
        // A name the catalog declares is its event, validated: from a source named `profile`, `completed` is
        // the catalog's `profile:completed`.
        let declared = crate::inbound::received::message("profile", "completed", br#"{"fiscalCode": "x"}"#);
        let report = decode(&declared).unwrap_err().to_string();
        assert!(report.contains("payload.fiscalCode"), "{report}");
        // A public event is the operator's to make, by a rule: never a provider's body as it came.
        let public = crate::inbound::received::message(
            "service",
            "subscribed",
            br#"{"serviceId": "S1", "fiscalCode": "AAABBB00A00A000B"}"#,
        );
        assert_eq!(
            decode(&public).unwrap_err().to_string(),
            r#"name: "service:subscribed" is a public event of the catalog: a source's event becomes one through a mapping rule only"#
        );
        let cases: &[(&[u8], &str)] = &[
            (br#"{"name": "gh:push", "receivedFrom": 1}"#, "receivedFrom: 1 is a number, expected a source's id"),
            (
                br#"{"name": "gh:push", "receivedFrom": "a:b"}"#,
                "receivedFrom: is not a source's id (1 to 64 ASCII letters, digits, - or _)",
            ),
            (
                br#"{"name": "other:push", "receivedFrom": "gh"}"#,
                r#"name: "other:push" is not "gh:<event type>" (a type of 1 to 200 printable ASCII characters)"#,
            ),
            (
                br#"{"name": "gh:", "receivedFrom": "gh"}"#,
                r#"name: "gh:" is not "gh:<event type>" (a type of 1 to 200 printable ASCII characters)"#,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(problems(input), [*expected], "input: {}", String::from_utf8_lossy(input));
        }
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

    fn member_value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#""ping""#.to_owned()),
            Just(r#""pi\u006eg""#.to_owned()),
            Just(r#""service:subscribed""#.to_owned()),
            Just(r#""profile:completed""#.to_owned()),
            Just(r#""nope\"x""#.to_owned()),
            Just("null".to_owned()),
            Just("[1]".to_owned()),
            Just("12".to_owned()),
            Just(r#"{"name":"wh1"}"#.to_owned()),
            Just(r#"{"fiscalCode":"AAABBB00A00A000B","serviceId":"s","servicePreferencesMode":"AUTO"}"#.to_owned()),
            Just(r#"{"serviceId":"a","fiscalCode":"AAABBB00A00A000B","serviceId":"b","x":{}}"#.to_owned()),
            Just(
                r#"{"fiscal\u0043ode":"AAABBB00A00A000B","serviceId":"s\n","servicePreferencesMode":"MANUAL"}"#
                    .to_owned()
            ),
        ]
    }

    proptest! {
        /// The fast path and the general path are two readings of one format: they must always agree.
        #[test]
        fn reading_bytes_and_reading_parsed_json_agree(
            members in proptest::collection::vec((prop_oneof![Just("name"), Just("payload"), Just("other")], member_value()), 0..4),
            space in prop_oneof![Just(""), Just(" \n")],
        ) {
            let body: Vec<String> = members.iter().map(|(k, v)| format!("{space}\"{k}\":{space}{v}")).collect();
            let text = format!("{space}{{{}}}", body.join(","));
            let parsed: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decode(text.as_bytes()), decode_value(parsed), "{}", text);
        }
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
