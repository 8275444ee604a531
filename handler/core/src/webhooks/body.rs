//! The exact bytes a webhook receives: `{"name": ..., "payload": ...}` without the keys that are attributes of
//! the webhook (the webhook already knows their values: they are why it received the event).

use crate::events::{Event, Kind, Payload};
use serde_json::Value;
use std::collections::BTreeMap;

/// The delivery body of `event` for a webhook with these attributes.
pub fn delivery_body(event: &Event, attributes: &BTreeMap<String, String>) -> String {
    write_event(event, |key| attributes.contains_key(key))
}

fn write_event(event: &Event, skip: impl Fn(&str) -> bool) -> String {
    let fields = match (&event.kind, &event.payload) {
        (Kind::Catalog(spec), Payload::Fields(fields)) => (spec.name.as_str(), fields),
        // The provider's body as it came: the webhook's attributes are not its fields.
        _ => return serde_json::to_string(event).unwrap_or_default(),
    };
    let (name, fields) = fields;
    let mut out = String::with_capacity(32 + name.len() + 48 * fields.len());
    out.push_str("{\"name\":");
    write_plain_str(&mut out, name);
    out.push_str(",\"payload\":{");
    let mut first = true;
    for (key, value) in fields.iter().filter(|(key, _)| !skip(key)) {
        if !first {
            out.push(',');
        }
        first = false;
        write_plain_str(&mut out, key);
        out.push(':');
        match value {
            Value::String(text) => write_str(&mut out, text),
            other => out.push_str(&other.to_string()),
        }
    }
    out.push_str("}}");
    out
}

/// Event names and field names come from the catalog, whose loader refuses the characters JSON escapes.
fn write_plain_str(out: &mut String, text: &str) {
    out.push('"');
    out.push_str(text);
    out.push('"');
}

/// Bytes that JSON strings must escape: `"`, `\\` and the control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A JSON string, escaped exactly as serde_json escapes it, so bodies match what any JSON encoder would send.
fn write_str(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    // Every byte escaped is ASCII, so the cuts below fall between characters.
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        out.push_str(&text[start..i]);
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(b >> 4) as usize]));
                out.push(char::from(HEX[(b & 0xf) as usize]));
            }
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{catalog, Payload};
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn strings_are_escaped_exactly_as_serde_json_does(text in "\\PC*|[\\x00-\\x20\"\\\\/\\x7f]*") {
            let mut ours = String::new();
            write_str(&mut ours, &text);
            prop_assert_eq!(ours, serde_json::to_string(&text).unwrap());
        }
    }

    #[test]
    fn catalog_names_need_no_escaping() {
        for event in &catalog::current().events {
            for name in std::iter::once(&event.name).chain(event.fields.iter().map(|f| &f.name)) {
                assert!(!name.bytes().any(|b| NEEDS_ESCAPE[b as usize]), "{name:?} must be escaped in JSON");
            }
        }
    }

    #[test]
    fn attribute_keys_are_left_out_and_the_rest_keeps_its_order() {
        let event = Event::new(
            catalog::event("service:subscribed").unwrap(),
            Payload::new(vec![("serviceId", json!("S1")), ("fiscalCode", json!("AAABBB00A00A000B"))]),
        );
        let attributes =
            BTreeMap::from([("serviceId".to_owned(), "S1".to_owned()), ("name".to_owned(), "wh2".to_owned())]);
        assert_eq!(
            delivery_body(&event, &attributes),
            r#"{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B"}}"#
        );
        assert_eq!(
            delivery_body(&event, &BTreeMap::new()),
            serde_json::to_string(
                &json!({"name": "service:subscribed", "payload": {"serviceId": "S1", "fiscalCode": "AAABBB00A00A000B"}})
            )
            .unwrap()
        );
        let numbers =
            Event::new(event.spec().unwrap(), Payload::new(vec![("n", json!(1.5)), ("o", json!({"a": [true, null]}))]));
        assert_eq!(
            delivery_body(&numbers, &attributes),
            r#"{"name":"service:subscribed","payload":{"n":1.5,"o":{"a":[true,null]}}}"#
        );
    }
}
