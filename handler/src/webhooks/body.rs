//! The exact bytes a webhook receives: `{"name": ..., "payload": ...}` without the keys that are attributes of
//! the webhook (the webhook already knows their values: they are why it received the event).

use crate::events::Event;
use serde_json::Value;
use std::collections::BTreeMap;

/// The delivery body of `event` for a webhook with these attributes.
pub fn delivery_body(event: &Event, attributes: &BTreeMap<String, String>) -> Vec<u8> {
    write_event(event, |key| attributes.contains_key(key))
}

fn write_event(event: &Event, skip: impl Fn(&str) -> bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + event.name().len() + 48 * event.payload.len());
    out.extend_from_slice(b"{\"name\":");
    write_plain_str(&mut out, event.name());
    out.extend_from_slice(b",\"payload\":{");
    let mut first = true;
    for (key, value) in event.payload.iter().filter(|(key, _)| !skip(key)) {
        if !first {
            out.push(b',');
        }
        first = false;
        write_plain_str(&mut out, key);
        out.push(b':');
        match value {
            Value::String(text) => write_str(&mut out, text),
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
    }
    out.extend_from_slice(b"}}");
    out
}

/// Event names and field names come from the catalog, which a test keeps free of characters JSON escapes.
fn write_plain_str(out: &mut Vec<u8>, text: &'static str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
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
fn write_str(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !NEEDS_ESCAPE[b as usize] {
            continue;
        }
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
            let mut ours = Vec::new();
            write_str(&mut ours, &text);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&text).unwrap());
        }
    }

    #[test]
    fn catalog_names_need_no_escaping() {
        for event in catalog::CATALOG {
            for name in std::iter::once(event.name).chain(event.fields.iter().map(|f| f.name)) {
                assert!(!name.bytes().any(|b| NEEDS_ESCAPE[b as usize]), "{name:?} must be escaped in JSON");
            }
        }
    }

    #[test]
    fn attribute_keys_are_left_out_and_the_rest_keeps_its_order() {
        let event = Event {
            spec: catalog::event("service:subscribed").unwrap(),
            payload: Payload::new(vec![("serviceId", json!("S1")), ("fiscalCode", json!("AAABBB00A00A000B"))]),
        };
        let attributes =
            BTreeMap::from([("serviceId".to_owned(), "S1".to_owned()), ("name".to_owned(), "wh2".to_owned())]);
        assert_eq!(
            delivery_body(&event, &attributes),
            br#"{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B"}}"#
        );
        assert_eq!(
            delivery_body(&event, &BTreeMap::new()),
            serde_json::to_vec(
                &json!({"name": "service:subscribed", "payload": {"serviceId": "S1", "fiscalCode": "AAABBB00A00A000B"}})
            )
            .unwrap()
        );
        let numbers = Event {
            spec: event.spec,
            payload: Payload::new(vec![("n", json!(1.5)), ("o", json!({"a": [true, null]}))]),
        };
        assert_eq!(
            delivery_body(&numbers, &attributes),
            br#"{"name":"service:subscribed","payload":{"n":1.5,"o":{"a":[true,null]}}}"#
        );
    }
}
