//! `testagent publish` as a separate process, producing straight to a Service Bus queue over AMQP, as to the
//! emulator: against the broker that holds clients to the emulator's contract (`servicebus/broker.js`); and
//! through a dispatcher's API that asks for a key, as on Azure.

use serde_json::{json, Value};
use std::process::Command;
use testkit::servicebus::{start_servicebus_broker, EMULATOR_KEY};

fn publish(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).arg("publish").args(args).output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

#[test]
fn events_go_to_the_queue_with_their_message_and_correlation_ids() {
    let broker = start_servicebus_broker();
    let connection = broker.connection_string(EMULATOR_KEY);
    let events = [r#"{"name":"ping","payload":{"name":"wh1"}}"#, r#"{"name":"ping:all"}"#];
    let (code, stdout, stderr) =
        publish(&["--service-bus", &connection, "--correlation-id", "corr-9", events[0], events[1]]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let ids: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("published ")).collect();
    assert_eq!(ids.len(), 2, "{stdout}");
    assert_ne!(ids[0], ids[1]);
    for (event, id) in events.iter().zip(ids) {
        let message = broker.next_message();
        assert_eq!(message["queue"], "events");
        assert_eq!(message["message_id"], id);
        assert_eq!(message["correlation_id"], "corr-9");
        let body: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, serde_json::from_str::<Value>(event).unwrap());
    }
}

#[test]
fn a_bad_event_or_queue_fails_with_the_reason_and_a_non_zero_exit() {
    let broker = start_servicebus_broker();
    let connection = broker.connection_string(EMULATOR_KEY);
    let (code, stdout, _) = publish(&["--service-bus", &connection, "{name: ping}"]);
    assert_eq!(code, 1);
    assert!(stdout.starts_with("FAILED \"{name: ping}\" is not JSON: key must be a string"), "{stdout}");

    let (code, stdout, _) =
        publish(&["--service-bus", &connection, "--queue", "nope", &json!({"name": "ping"}).to_string()]);
    assert_eq!(code, 1);
    assert!(stdout.contains("queue \"nope\"") && stdout.contains("could not be found"), "{stdout}");
}

#[test]
fn a_bad_connection_string_is_named_without_its_key() {
    let key = "c2VjcmV0LWtleS12YWx1ZQ==";
    let connection = format!("Endpoint=sb://localhost/;SharedAccessKeyName=send;SharedAccessKey={key}");
    let (code, _, stderr) = publish(&["--service-bus", &connection, "{}"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "error: --service-bus: Endpoint \"sb://localhost/\" is not sb://<namespace>.servicebus.windows.net/"
    );
    assert!(!stderr.contains(key));
}

#[test]
fn through_an_api_that_asks_for_a_key_the_functions_key_is_sent() {
    let dir = testkit::TempDir::new("publish-key");
    let handler = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("handler");
    let key = "a-function-key-0f3e";
    let (handler, _) = testkit::handler::Handler::start(Some(&handler), &dir.0, &["--api-key", key]).unwrap();
    let event = r#"{"name":"ping","payload":{"name":"wh1"}}"#;
    let (code, stdout, _) = publish(&["--url", &handler.api, event]);
    assert_eq!(code, 1);
    assert!(stdout.contains("401"), "{stdout}");
    let (code, stdout, stderr) = publish(&["--url", &handler.api, "--functions-key", key, event]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("published "), "{stdout}");
}
