//! The AMQP sender, which reaches the Service Bus emulator, against a broker that holds it to the emulator's
//! contract (`__integrations__/servicebus/broker.js`, on rhea, the Azure SDK for JavaScript's AMQP library):
//! SASL ANONYMOUS, a CBS put-token whose SAS signature verifies with the key, the declared queues only, and the
//! message as Service Bus reads it (properties, `x-opt-scheduled-enqueue-time`, a data section).

#[path = "support/job.rs"]
mod fixture;
use fixture::job;

#[path = "support/servicebus.rs"]
mod broker;

use broker::{start_servicebus_broker, EMULATOR_KEY};
use dispatcher::functions::servicebus::{MessageProperties, ServiceBusConnection, ServiceBusQueue};
use serde_json::{json, Value};

fn queue(connection: &str, name: &str) -> ServiceBusQueue {
    let connection = ServiceBusConnection::parse(connection).unwrap();
    ServiceBusQueue::connect(&connection, name, dispatcher::http_client::client().unwrap(), None).unwrap()
}

#[tokio::test]
async fn a_scheduled_resend_reaches_the_emulator_queue_as_service_bus_reads_it() {
    let broker = start_servicebus_broker();
    let deliveries = queue(&broker.connection_string(EMULATOR_KEY), "deliveries");
    let at_ms = 1_900_000_000_250;
    deliveries.schedule(&job(), at_ms).await.unwrap();

    let host = "127.0.0.1";
    assert_eq!(
        broker.next(),
        json!({"put_token": format!("sb://{host}/deliveries"), "accepted": true, "problem": null})
    );
    let message = broker.next_message();
    let job = job();
    assert_eq!(message["queue"], "deliveries");
    assert_eq!(message["message_id"], format!("{}-2", job.delivery_id));
    assert_eq!(message["correlation_id"], "corr-7");
    assert_eq!(message["content_type"], "application/json");
    assert_eq!(message["durable"], true);
    assert_eq!(message["scheduled_enqueue_time"], at_ms);
    assert_eq!(message["body_section"], "data");
    let body: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, serde_json::to_value(&job).unwrap());

    // The connection stays open: the next sends go on it, without another put-token, each accepted in turn.
    for n in 0..3 {
        let properties = MessageProperties { message_id: Some(format!("m-{n}")), ..Default::default() };
        deliveries.send(&format!("{{\"n\":{n}}}"), &properties).await.unwrap();
        let message = broker.next_message();
        assert_eq!(
            (message["message_id"].clone(), message["body"].clone()),
            (json!(format!("m-{n}")), json!(format!("{{\"n\":{n}}}")))
        );
        assert_eq!(message["scheduled_enqueue_time"], Value::Null);
    }
}

#[tokio::test]
async fn a_body_larger_than_a_frame_arrives_whole() {
    let broker = start_servicebus_broker();
    let events = queue(&broker.connection_string(EMULATOR_KEY), "events");
    let body = json!({"name": "ping", "payload": {"padding": "x".repeat(200_000)}}).to_string();
    events.send(&body, &MessageProperties::default()).await.unwrap();
    let message = broker.next_message();
    assert_eq!(message["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(message["body"], body);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_the_brokers_reason_and_never_shown() {
    let broker = start_servicebus_broker();
    let wrong = "bm90LXRoZS1lbXVsYXRvci1rZXk=";
    let error =
        queue(&broker.connection_string(wrong), "events").send("{}", &MessageProperties::default()).await.unwrap_err();
    assert!(error.starts_with("sending to the Service Bus queue \"events\" failed: AMQP to 127.0.0.1:"), "{error}");
    assert!(
        error.contains(
            "put-token for sb://127.0.0.1/events refused: status Some(401), the signature does not match the key"
        ),
        "{error}"
    );
    assert!(!error.contains(wrong), "{error}");
    let report = broker.next();
    assert_eq!(report["accepted"], false);
}

#[tokio::test]
async fn a_queue_the_emulator_does_not_declare_is_named_in_the_error() {
    let broker = start_servicebus_broker();
    let error = queue(&broker.connection_string(EMULATOR_KEY), "evnets")
        .send("{}", &MessageProperties::default())
        .await
        .unwrap_err();
    assert!(error.contains("queue \"evnets\""), "{error}");
    assert!(error.contains("amqp:not-found"), "{error}");
}

#[tokio::test]
async fn a_closed_port_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let connection = format!(
        "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=k;UseDevelopmentEmulator=true"
    );
    let error = queue(&connection, "events").send("{}", &MessageProperties::default()).await.unwrap_err();
    assert!(error.contains("cannot connect"), "{error}");
}
