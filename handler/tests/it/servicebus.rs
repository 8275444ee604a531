//! The Service Bus adapter (`adapters/servicebus`, on the Azure SDK's `azure_core_amqp`) against the broker that
//! holds clients to the emulator's contract (`__integrations__/servicebus/broker.js`, on rhea, the Azure SDK for
//! JavaScript's AMQP library): SASL ANONYMOUS, a CBS put-token whose SAS signature verifies with the key, the
//! declared queues only, and the message as Service Bus reads it (properties, `x-opt-scheduled-enqueue-time`, a
//! data section); and the deliveries queue's jobs.

use crate::support::job::job;
use crate::support::servicebus::{start_servicebus_broker, EMULATOR_KEY};
use dispatcher::adapters::servicebus::{Outgoing, QueueSender, ServiceBusConnection, ServiceBusDeliveries};
use dispatcher::ports::{DeliveryQueue, NewDeliveries};
use dispatcher_core::model::{Delivery, Job, LogVersion};
use serde_json::{json, Value};

fn queue(connection: &str, name: &str) -> QueueSender {
    QueueSender::new(&ServiceBusConnection::parse(connection).unwrap(), name)
}

fn outgoing<'a>(id: &'a str, body: &'a str) -> Outgoing<'a> {
    Outgoing { message_id: id, correlation_id: None, scheduled_at_ms: None, traceparent: None, body, retry: None }
}

#[tokio::test]
async fn a_scheduled_resend_reaches_the_emulator_queue_as_service_bus_reads_it() {
    let broker = start_servicebus_broker();
    let deliveries = ServiceBusDeliveries(queue(&broker.connection_string(EMULATOR_KEY), "deliveries"));
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
    assert_eq!(message["message_id"], format!("{}-2", job.delivery.id), "the id names the attempt");
    assert_eq!(message["correlation_id"], "corr-7");
    assert_eq!(message["content_type"], "application/json");
    assert_eq!(message["durable"], true);
    assert_eq!(message["scheduled_enqueue_time"], at_ms);
    assert_eq!(message["body_section"], "data");
    let body: Job = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, job, "the job, whole");

    // The connection stays open: the next sends go on it, without another put-token, each accepted in turn.
    for n in 0..3 {
        let (id, body) = (format!("m-{n}"), format!("{{\"n\":{n}}}"));
        deliveries.0.send(outgoing(&id, &body)).await.unwrap();
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
    events.send(outgoing("big", &body)).await.unwrap();
    let message = broker.next_message();
    assert_eq!(message["body"].as_str().map(str::len), Some(body.len()));
    assert_eq!(message["body"], body);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_the_brokers_reason_and_never_shown() {
    let broker = start_servicebus_broker();
    let wrong = "bm90LXRoZS1lbXVsYXRvci1rZXk=";
    let error =
        queue(&broker.connection_string(wrong), "events").send(outgoing("m", "{}")).await.unwrap_err().to_string();
    assert!(error.starts_with("sending to the Service Bus queue \"events\" at amqp://127.0.0.1:"), "{error}");
    assert!(error.contains("put-token for sb://127.0.0.1/events refused"), "{error}");
    assert!(error.contains("the signature does not match the key"), "the broker's reason: {error}");
    assert!(!error.contains(wrong), "{error}");
    let report = broker.next();
    assert_eq!(report["accepted"], false);
}

#[tokio::test]
async fn a_queue_the_emulator_does_not_declare_is_named_in_the_error() {
    let broker = start_servicebus_broker();
    let error = queue(&broker.connection_string(EMULATOR_KEY), "evnets")
        .send(outgoing("m", "{}"))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("queue \"evnets\""), "{error}");
    assert!(error.contains("NotFound") && error.contains("could not be found"), "the broker's reason: {error}");
}

#[tokio::test]
async fn a_closed_port_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let connection = format!(
        "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=k;UseDevelopmentEmulator=true"
    );
    let error = queue(&connection, "events").send(outgoing("m", "{}")).await.unwrap_err().to_string();
    assert!(error.contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn a_peer_that_never_answers_is_tried_once_more_on_a_new_connection_then_an_error() {
    // It takes connections and says nothing: each try waits its whole timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    let connection = format!(
        "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=k;UseDevelopmentEmulator=true"
    );
    let error = queue(&connection, "events").send(outgoing("m", "{}")).await.unwrap_err().to_string();
    assert!(error.contains("no answer within 15s"), "{error}");
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2, "the second try on a new connection");
}

#[tokio::test]
async fn first_jobs_are_sent_under_their_attempts_id_with_their_log_version_or_without() {
    let broker = start_servicebus_broker();
    let deliveries = ServiceBusDeliveries(queue(&broker.connection_string(EMULATOR_KEY), "deliveries"));
    let logged = Job::first(job().delivery, Some(LogVersion::new("7")));
    let routed_again = Job::first(Delivery { source_id: "m-again".into(), ..job().delivery }, None);
    deliveries.enqueue(vec![logged.clone(), routed_again.clone()], 1_000).await.unwrap();
    for sent in [&logged, &routed_again] {
        let message = broker.next_message();
        assert_eq!(message["message_id"], format!("{}-0", sent.delivery.id));
        let body: Job = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
        assert_eq!(&body, sent, "the version, or none for a delivery logged before: DeliverWebhook reads the log");
    }
    // A manual retry is never a duplicate of a scheduled job.
    deliveries.resend(&logged).await.unwrap();
    let resent = broker.next_message();
    let id = resent["message_id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{}-0-retry-", logged.delivery.id)), "{id}");
}
