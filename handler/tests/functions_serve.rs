//! `handler serve` driven the way the Functions host drives it (../shared/reference/azure-functions-custom-handler.md):
//! a separate process started with FUNCTIONS_CUSTOMHANDLER_PORT and no arguments, readiness on `GET /`, and
//! invocations posted to `/{FunctionName}`, with Cosmos DB from the local server.

#[path = "support/cosmos.rs"]
mod cosmos_server;
mod support;

use axum::http::HeaderMap;
use cosmos_server::{start_cosmos_server, EMULATOR_KEY};
use dispatcher::dispatch::delivery_id;
use dispatcher::local::new_webhook;
use dispatcher::store::cosmos::{CosmosConfig, CosmosStore};
use dispatcher::store::{DeliveryLog, RejectedEvents, Status, Webhooks};
use dispatcher::webhooks::WebhookConfig;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVICE_BUS: &str =
    "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=handler;SharedAccessKey=bm90LWEtcmVhbC1rZXk=";

struct Handler(Child);

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/invocations/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn invoke(client: &reqwest::Client, base: &str, function: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .post(format!("{base}/{function}"))
        .header("content-type", "application/json")
        .header("x-azure-functions-invocationid", "0f8fad5b-d9cb-469f-a165-70867728950e")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// The Cosmos store of a test, on the local server, in its own database.
async fn cosmos_store(cosmos: &cosmos_server::CosmosServer, database: &str) -> CosmosStore {
    let config = CosmosConfig {
        endpoint: cosmos.endpoint.clone(),
        key: EMULATOR_KEY.into(),
        database: database.into(),
        create_if_missing: true,
        retention_days: 30,
    };
    CosmosStore::connect(&config).await.unwrap()
}

/// `handler serve` started as the host starts it (no arguments, settings in the environment), once it answers
/// `GET /`; stderr goes to `log`. Returns it with a client and its base URL.
async fn start_serve(
    cosmos: &cosmos_server::CosmosServer,
    database: &str,
    settings: &[(&str, &str)],
    log: Stdio,
) -> (Handler, reqwest::Client, String) {
    let port = free_port();
    let handler = Handler(
        Command::new(env!("CARGO_BIN_EXE_handler"))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("COSMOSDB_ENDPOINT", &cosmos.endpoint)
            .env("COSMOSDB_KEY", EMULATOR_KEY)
            .env("COSMOSDB_DATABASE", database)
            .env("DISPATCHER_WEBHOOK_CACHE_SECONDS", "0")
            .env("ServiceBusConnection", SERVICE_BUS)
            .envs(settings.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let (client, base) = (dispatcher::http_client::client().unwrap(), format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    while !client.get(format!("{base}/")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(20), "GET / never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (handler, client, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_incoming_event_outputs_the_delivery_jobs_and_records_what_it_rejects() {
    let cosmos = start_cosmos_server();
    let store = cosmos_store(&cosmos, "functions").await;
    for (id, webhook) in [
        ("wh1", json!({"url": "https://one.example/hook", "subscriptions": ["ping"], "attributes": {"name": "wh1"}})),
        (
            "wh2",
            json!({"url": "https://two.example/hook", "subscriptions": "ping,service:subscribed", "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}}),
        ),
        (
            "wh3",
            json!({"url": "https://three.example/hook", "subscriptions": ["service:subscribed"], "attributes": {"serviceId": "aServiceId09876"}}),
        ),
    ] {
        store.put_webhook(&new_webhook(id.into(), WebhookConfig::decode(&webhook).unwrap()).unwrap()).await.unwrap();
    }

    let log_file = std::env::temp_dir().join(format!("functions-serve-{}.log", std::process::id()));
    let log = Stdio::from(std::fs::File::create(&log_file).unwrap());
    let (_handler, client, base) = start_serve(&cosmos, "functions", &[], log).await;

    // profile:completed AUTO maps to service:subscribed for wh2 and wh3, ids derived from MessageId.
    let body = br#"{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B"}}"#;
    let expected: Vec<Value> = ["wh2", "wh3"]
        .iter()
        .map(|webhook| {
            json!({"deliveryId": delivery_id("msg-5e0c", webhook, body).as_str(), "webhookId": webhook,
                   "event": "service:subscribed", "body": std::str::from_utf8(body).unwrap(), "sourceId": "msg-5e0c",
                   "correlationId": "corr-abc", "attemptsMade": 0})
        })
        .collect();
    for encoding in [
        "service-bus-base64.json",
        "service-bus-json-string.json",
        "service-bus-object.json",
        "service-bus-plain-metadata.json",
    ] {
        let (status, answer) = invoke(&client, &base, "OnIncomingEvent", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        let messages = answer["Outputs"]["deliveries"].as_array().unwrap_or_else(|| panic!("{encoding}: {answer}"));
        assert!(messages.iter().all(Value::is_string), "each message is JSON text: {answer}");
        let jobs: Vec<Value> = messages.iter().map(|m| serde_json::from_str(m.as_str().unwrap()).unwrap()).collect();
        assert_eq!(jobs, expected, "{encoding}: the same jobs whatever the encoding (a redelivery too)");
    }
    let logged = store.get_delivery(delivery_id("msg-5e0c", "wh3", body)).await.unwrap().expect("logged");
    assert_eq!((logged.status, logged.correlation_id.as_deref()), (Status::Pending, Some("corr-abc")));

    // An invalid event: recorded with its problems, answered 2xx so that it is not retried.
    let invalid =
        json!({"Data": {"msg": r#"{"name":"ping","payload":{"name":""}}"#}, "Metadata": {"MessageId": "\"bad-1\""}});
    let (status, answer) = invoke(&client, &base, "OnIncomingEvent", invalid.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Outputs"], json!({}));
    assert!(
        answer["Logs"][0].as_str().unwrap().contains("message bad-1 rejected, not retried: payload.name"),
        "{answer}"
    );
    let (rejected, _) = store.list_rejected(10, None).await.unwrap();
    assert_eq!((rejected[0].id.as_str(), rejected[0].problems[0].path.as_str()), ("bad-1", "payload.name"));

    // Cosmos DB unreachable: a non-2xx answer, so that Service Bus redelivers the message.
    drop(cosmos);
    let (status, answer) = invoke(&client, &base, "OnIncomingEvent", fixture("service-bus-base64.json")).await;
    assert_eq!(status, 503, "{answer}");
    let logs = std::fs::read_to_string(&log_file).unwrap();
    assert!(!logs.contains(EMULATOR_KEY), "the key is never logged");
    let _ = std::fs::remove_file(&log_file);
}

#[test]
fn serve_reports_every_missing_setting_at_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("serve")
        .env_remove("FUNCTIONS_CUSTOMHANDLER_PORT")
        .env_remove("FUNCTIONS_HTTPWORKER_PORT")
        .env_remove("COSMOSDB_ENDPOINT")
        .env("COSMOSDB_KEY", "s3cret-key-value")
        .env("DISPATCHER_RETENTION_DAYS", "0")
        .env("ServiceBusConnection", "Endpoint=sb://localhost/;SharedAccessKeyName=a;SharedAccessKey=s3cret-key-value")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    for problem in [
        "FUNCTIONS_CUSTOMHANDLER_PORT: missing",
        "COSMOSDB_ENDPOINT: missing",
        "DISPATCHER_RETENTION_DAYS: \"0\" is not a number of days from 1 to 3650",
        "ServiceBusConnection: Endpoint \"sb://localhost/\" is not sb://<namespace>.servicebus.windows.net/",
    ] {
        assert!(stderr.contains(problem), "{problem}: {stderr}");
    }
    assert!(!stderr.contains("s3cret-key-value"));
}

/// A stand-in of the Service Bus REST endpoint: records what is sent to it and answers 201 (contract §7).
async fn service_bus_stand_in() -> (String, Arc<Mutex<Vec<(String, HeaderMap, String)>>>) {
    let sent: Arc<Mutex<Vec<(String, HeaderMap, String)>>> = Arc::default();
    let log = sent.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((uri.path().to_owned(), headers, body));
            axum::http::StatusCode::CREATED
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, sent)
}

/// DeliverWebhook and OnDeliveryDeadLettered on the fixtures: one attempt per invocation, a retryable failure
/// re-sent to the deliveries queue scheduled, the same answer whatever the encoding, and the dead path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_webhook_attempts_once_and_schedules_the_retry() {
    let cosmos = start_cosmos_server();
    let store = cosmos_store(&cosmos, "deliver").await;
    let receivers = support::Receivers::start().await;
    receivers.behave("wh1", support::Behaviour { status: 503, ..Default::default() });
    let webhook = json!({"url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"},
                         "failureCallbackUrl": receivers.url("callback")});
    let wh1 = new_webhook("wh1".into(), WebhookConfig::decode(&webhook).unwrap()).unwrap();
    store.put_webhook(&wh1).await.unwrap();
    let (service_bus, sent) = service_bus_stand_in().await;

    let settings = [
        ("DELIVERIES_QUEUE", "deliveries"),
        ("DISPATCHER_SERVICEBUS_REST_URL", service_bus.as_str()),
        ("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true"),
        ("DISPATCHER_RETRY_SCHEDULE", "1m,1m"),
    ];
    let (_handler, client, base) = start_serve(&cosmos, "deliver", &settings, Stdio::null()).await;
    let id = "dlv_e02cdc1c690f6a5eb73152a53a985ab1";
    let body = r#"{"name":"ping","payload":{}}"#;
    assert_eq!(delivery_id("msg-7a41", "wh1", body.as_bytes()).as_str(), id, "the fixtures' job");

    // Attempt 1 fails with 503, in either encoding: answered 2xx, the job re-sent for attempt 2.
    let encodings = ["deliver-webhook-base64.json", "deliver-webhook-json-string.json", "deliver-webhook-object.json"];
    for (i, encoding) in encodings.iter().enumerate() {
        let (status, answer) = invoke(&client, &base, "DeliverWebhook", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        assert_eq!(answer["Outputs"], json!({}), "{encoding}: nothing for the output bindings");
        let line = answer["Logs"][0].as_str().unwrap();
        assert!(line.starts_with(&format!("delivery {id} attempt 1: HTTP 503, retried at ")), "{encoding}: {line}");
        let sent = sent.lock().unwrap().clone();
        assert_eq!(sent.len(), i + 1);
        let (path, headers, message) = &sent[i];
        assert_eq!(path, "/deliveries/messages");
        let properties: Value = serde_json::from_str(headers["brokerproperties"].to_str().unwrap()).unwrap();
        assert_eq!(properties["MessageId"], format!("{id}-1"), "{encoding}: the same id, dropped as a duplicate");
        let scheduled = httpdate::parse_http_date(properties["ScheduledEnqueueTimeUtc"].as_str().unwrap()).unwrap();
        let delay = scheduled.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        assert!(delay > Duration::from_secs(40), "about a minute later (1m ± 20 %): {delay:?}");
        let job: Value = serde_json::from_str(message).unwrap();
        assert_eq!((job["deliveryId"].as_str(), job["attemptsMade"].as_u64()), (Some(id), Some(1)));
    }
    let logged = store.get_delivery(dispatcher::dispatch::DeliveryId::parse(id).unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (logged.status, logged.attempts.len()),
        (Status::Retrying, 1),
        "a redelivered attempt replaces its entry"
    );

    // The scheduled job comes back: attempt 2 succeeds, with the same webhook-id.
    receivers.behave("wh1", support::Behaviour::default());
    let scheduled = sent.lock().unwrap()[0].2.clone();
    let invocation =
        json!({"Data": {"msg": scheduled}, "Metadata": {"MessageId": format!("{id}-1"), "DeliveryCount": "1"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
    assert_eq!(
        (status, answer["Logs"][0].as_str()),
        (200, Some(format!("delivery {id} attempt 2: HTTP 200, delivered").as_str()))
    );
    let received = receivers.at("wh1");
    let n = encodings.len();
    assert_eq!(received.len(), n + 1);
    assert!(received.iter().all(|r| r.header("webhook-id") == Some(id) && r.verify(wh1.secret.expose())));
    assert_eq!(received[n].body, body.as_bytes(), "the exact body");
    assert_eq!(received[n].header("x-correlation-id"), Some("corr-abc"));
    let logged = store.get_delivery(dispatcher::dispatch::DeliveryId::parse(id).unwrap()).await.unwrap().unwrap();
    assert_eq!((logged.status, logged.attempts.len()), (Status::Succeeded, 2));
    assert_eq!(sent.lock().unwrap().len(), n, "nothing more scheduled");

    // Service Bus dead-lettered a job itself: the dead path, with the failure callback; the same in either encoding.
    let reason = "Service Bus dead-lettered the delivery job: MaxDeliveryCountExceeded (Message could not be consumed after 10 delivery attempts.)";
    for (i, encoding) in ["dead-lettered-base64.json", "dead-lettered-json-string.json"].iter().enumerate() {
        let (status, answer) = invoke(&client, &base, "OnDeliveryDeadLettered", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        assert_eq!(answer["Outputs"], json!({}), "{encoding}");
        assert_eq!(answer["Logs"][0].as_str(), Some(format!("delivery {id} dead: {reason}").as_str()), "{encoding}");
        let logged = store.get_delivery(dispatcher::dispatch::DeliveryId::parse(id).unwrap()).await.unwrap().unwrap();
        assert_eq!((logged.status, logged.dead_reason.as_deref()), (Status::Dead, Some(reason)), "{encoding}");
        let callbacks = receivers.at("callback");
        assert_eq!(callbacks.len(), i + 1, "{encoding}");
        assert!(callbacks[i].verify(wh1.secret.expose()), "signed like a delivery");
        assert_eq!(
            callbacks[i].json(),
            json!({"callbackType": "DeliveryFailure", "deliveryId": id, "webhookId": "wh1", "eventType": "ping",
                   "payload": {}, "statusCode": 200, "attempts": 3}),
            "{encoding}"
        );
    }

    // A message that is not a delivery job: recorded as rejected, answered 2xx (a redelivery cannot fix it).
    let junk = json!({"Data": {"msg": "{\"hello\":1}"}, "Metadata": {"MessageId": "junk-1"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", junk.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["Logs"][0]
            .as_str()
            .unwrap()
            .starts_with("message junk-1 rejected, not retried: Data.msg: not a delivery job"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_attempts_are_each_logged_in_the_span_of_their_own_delivery_alone() {
    let cosmos = start_cosmos_server();
    let store = cosmos_store(&cosmos, "spans").await;
    let receivers = support::Receivers::start().await;
    let webhook = json!({"url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"}});
    store.put_webhook(&new_webhook("wh1".into(), WebhookConfig::decode(&webhook).unwrap()).unwrap()).await.unwrap();
    let (service_bus, _sent) = service_bus_stand_in().await;
    let log_file = support::temp_dir("serve-spans").join("handler.log");
    let settings = [
        ("DELIVERIES_QUEUE", "deliveries"),
        ("DISPATCHER_SERVICEBUS_REST_URL", service_bus.as_str()),
        ("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true"),
        ("DISPATCHER_LOG", "info"),
        ("DISPATCHER_LOG_FORMAT", "json"),
    ];
    let log = Stdio::from(std::fs::File::create(&log_file).unwrap());
    let (_handler, client, base) = start_serve(&cosmos, "spans", &settings, log).await;

    // Sixteen attempts at once, of sixteen deliveries, on the handler's two threads.
    let body = r#"{"name":"ping","payload":{}}"#;
    let ids: Vec<String> =
        (0..16).map(|i| delivery_id(&format!("msg-{i}"), "wh1", body.as_bytes()).to_string()).collect();
    let mut invocations = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let job = json!({"deliveryId": id, "webhookId": "wh1", "event": "ping", "body": body,
                         "sourceId": format!("msg-{i}"), "attemptsMade": 0});
        let invocation = json!({"Data": {"msg": job}, "Metadata": {"MessageId": id, "DeliveryCount": "1"}});
        let (client, base) = (client.clone(), base.clone());
        invocations
            .spawn(async move { invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await });
    }
    while let Some(answered) = invocations.join_next().await {
        let (status, answer) = answered.unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(receivers.at("wh1").len(), 16);

    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(support::attempt_log_ids(&std::fs::read_to_string(&log_file).unwrap()), expected);
}
