//! The custom-handler protocol against the fixtures in `fixtures/invocations/` (see its README for the
//! contract each one comes from): every encoding the host may use reads the same.

use dispatcher::runtime::azure::invocation::{Invocation, InvocationError, InvocationResponse};
use dispatcher_core::events::decode;
use serde_json::{json, Value};

const BODY: &str = r#"{"name":"profile:completed","payload":{"fiscalCode":"AAABBB00A00A000B","servicePreferencesMode":"AUTO","oldServicePreferencesMode":"LEGACY"}}"#;

fn fixture(name: &str) -> Invocation {
    let path = format!("{}/tests/it/fixtures/invocations/{name}", env!("CARGO_MANIFEST_DIR"));
    Invocation::parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_encoding_of_a_service_bus_invocation_reads_the_same() {
    for name in [
        "service-bus-base64.json",
        "service-bus-json-string.json",
        "service-bus-object.json",
        "service-bus-plain-metadata.json",
    ] {
        let invocation = fixture(name);
        let body = invocation.message_body("msg").unwrap();
        assert_eq!(String::from_utf8(body.clone()).unwrap(), BODY, "{name}: the exact body bytes");
        assert!(decode(&body).is_ok(), "{name}: the body is the event");
        assert_eq!(invocation.metadata_text("MessageId").as_deref(), Some("msg-5e0c"), "{name}");
        assert_eq!(invocation.metadata_text("CorrelationId").as_deref(), Some("corr-abc"), "{name}");
        assert_eq!(invocation.metadata_u64("DeliveryCount"), Some(1), "{name}");
        assert_eq!(invocation.metadata_u64("SequenceNumber"), Some(17), "{name}");
        assert_eq!(invocation.application_property("tenant").as_deref(), Some("t1"), "{name}");
        assert_eq!(invocation.application_property("absent"), None, "{name}");
    }
}

#[test]
fn a_body_nested_as_json_text_in_a_json_string_is_unwrapped() {
    let twice = serde_json::to_string(&serde_json::to_string(BODY).unwrap()).unwrap();
    let raw = format!(r#"{{"Data":{{"msg":{twice}}},"Metadata":{{}}}}"#);
    assert_eq!(Invocation::parse(raw.as_bytes()).unwrap().message_body("msg").unwrap(), BODY.as_bytes());
}

#[test]
fn malformed_invocations_are_reported_with_what_is_wrong() {
    let parse = |raw: &str| Invocation::parse(raw.as_bytes());
    assert!(matches!(parse("not json"), Err(InvocationError::Shape(_))));
    assert_eq!(parse("[1]"), Err(InvocationError::Shape("got an array".into())));
    assert_eq!(parse(r#"{"Data": 3}"#), Err(InvocationError::Shape("Data is a number, not an object".into())));
    let empty = parse(r#"{"Data": {}, "Metadata": {}}"#).unwrap();
    assert_eq!(empty.message_body("msg"), Err(InvocationError::MissingBinding { binding: "msg".into() }));
    assert_eq!(empty.metadata_text("MessageId"), None);
    let error = parse(r#"{"Data": {"msg": "%%% not base64"}}"#).unwrap().message_body("msg").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(r#"Data.msg is neither base64 nor JSON text nor a JSON object: "%%% not base64""#),
        "{error}"
    );
    let error = parse(r#"{"Data": {"msg": 12}}"#).unwrap().message_body("msg").unwrap_err();
    assert_eq!(error.to_string(), "Data.msg is neither base64 nor JSON text nor a JSON object: got a number");
}

#[test]
fn an_answer_carries_output_messages_as_an_array_of_json_strings() {
    let one = json!({"deliveryId": "dlv_1"}).to_string();
    let answer = InvocationResponse::default().messages("deliveries", vec![one.clone()]).log("1 delivery").to_json();
    assert_eq!(answer, json!({"Outputs": {"deliveries": [one]}, "Logs": ["1 delivery"], "ReturnValue": null}));
    // Each message is JSON text that reads back as the message.
    let text = answer["Outputs"]["deliveries"][0].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap()["deliveryId"], "dlv_1");
    assert_eq!(InvocationResponse::default().to_json(), json!({"Outputs": {}, "Logs": [], "ReturnValue": null}));
}

mod fuzz {
    //! The invocation decoder on arbitrary invocations, in the host's shape and around it: it answers or says
    //! what is wrong, never panics (`PROPTEST_CASES` sets the count; see `handler/core/tests/it/fuzz.rs`).
    use dispatcher::runtime::azure::invocation::Invocation;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(|n| json!(n)),
            "[A-Za-z0-9+/=\"{}:,]{0,24}".prop_map(Value::String),
            "\\PC{0,16}".prop_map(Value::String),
            prop::collection::hash_map("[a-zA-Z]{1,8}", "\\PC{0,8}", 0..4).prop_map(|m| json!(m)),
        ]
    }

    proptest! {
        #[test]
        fn the_invocation_decoder_never_panics(
            body in value(),
            metadata in prop::collection::vec((prop::sample::select(vec!["MessageId", "DeliveryCount", "ApplicationProperties", "UserProperties", "DeadLetterReason", "x"]), value()), 0..5),
            bytes in prop::collection::vec(any::<u8>(), 0..48),
        ) {
            let _ = Invocation::parse(&bytes);
            let metadata: serde_json::Map<String, Value> = metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let raw = json!({"Data": {"msg": body}, "Metadata": metadata}).to_string();
            let invocation = Invocation::parse(raw.as_bytes()).unwrap();
            let _ = invocation.message_body("msg");
            let _ = invocation.message_body("other");
            for key in ["MessageId", "DeliveryCount", "DeadLetterReason", "x"] {
                let _ = (invocation.metadata_text(key), invocation.metadata_u64(key));
            }
            let _ = invocation.application_property("Diagnostic-Id");
        }
    }
}
