//! `handler serve` driven the way the Functions host drives it (docs/azure-functions.md): a separate process
//! started with FUNCTIONS_CUSTOMHANDLER_PORT and no arguments, readiness on `GET /`, and invocations posted to
//! `/{FunctionName}`, with Cosmos DB from the local server and Service Bus from the broker.

use crate::support::cosmos::{start_cosmos_server, start_cosmos_server_with, CosmosServer, EMULATOR_KEY};
use crate::support::servicebus::{start_servicebus_broker, ServiceBusBroker};
use crate::support::{self, Behaviour, Receivers};
use dispatcher::adapters::cosmos::{CosmosAuth, CosmosConfig, CosmosStore};
use dispatcher::ports::{DeliveryLog, RejectedEvents, WebhookStore};
use dispatcher_core::dispatch::delivery_id;
use dispatcher_core::model::{DeliveryId, Status};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A namespace on Azure that is never reached (OnIncomingEvent sends nothing: its jobs are outputs).
const SERVICE_BUS: &str =
    "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=handler;SharedAccessKey=bm90LWEtcmVhbC1rZXk=";

use crate::support::webhook;

pub(crate) struct Handler(pub(crate) Child);

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use testkit::free_port;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/it/fixtures/invocations/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

pub(crate) async fn invoke(client: &reqwest::Client, base: &str, function: &str, body: Vec<u8>) -> (u16, Value) {
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
pub(crate) async fn cosmos_store(cosmos: &CosmosServer, database: &str) -> CosmosStore {
    let config = CosmosConfig {
        endpoint: cosmos.endpoint.clone(),
        auth: CosmosAuth::Key(EMULATOR_KEY.into()),
        database: database.into(),
        create_if_missing: true,
        retention_days: 30,
    };
    let store = CosmosStore::new(config);
    store.list_webhooks().await.unwrap();
    store
}

/// The Cosmos server, a store in `database` holding webhook `wh1` (pings named wh1, to the receiver `/wh1`), and
/// the receivers: what most tests of DeliverWebhook start from.
pub(crate) async fn with_one_webhook(database: &str) -> (CosmosServer, CosmosStore, Receivers) {
    let cosmos = start_cosmos_server();
    let store = cosmos_store(&cosmos, database).await;
    let receivers = Receivers::start().await;
    let config = json!({"url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"}});
    store.put_webhook(&webhook("wh1", config), None).await.unwrap();
    (cosmos, store, receivers)
}

/// `handler serve` started as the host starts it (no arguments, settings in the environment), once it answers
/// `GET /`; stderr goes to `log`. Returns it with a client and its base URL.
pub(crate) async fn start_serve(
    cosmos: &CosmosServer,
    database: &str,
    settings: &[(&str, &str)],
    log: Stdio,
) -> (Handler, reqwest::Client, String) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .env("COSMOSDB_ENDPOINT", &cosmos.endpoint)
        .env("COSMOSDB_KEY", EMULATOR_KEY)
        .env("COSMOSDB_DATABASE", database)
        .env("DISPATCHER_WEBHOOK_CACHE_SECONDS", "0")
        .env("ServiceBusConnection", SERVICE_BUS)
        .envs(settings.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    start_ready(command, port).await
}

/// The operator's key of the `handler serve` processes of the tests, unless a test sets its own.
pub(crate) const SERVE_KEY: &str = "serve-operator-key-0123456789";

/// A client that sends the operator's key on every request, as operators' tools do.
pub(crate) fn operator_client(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-functions-key", key.parse().unwrap());
    dispatcher::adapters::tls::build(dispatcher::adapters::tls::builder().default_headers(headers)).unwrap()
}

/// `command`, a `handler serve`, started on `port` as the host starts it, once it answers `GET /`; with a
/// client that sends the operator's key (`SERVE_KEY`, set unless the command sets a key) and its base URL.
pub(crate) async fn start_ready(mut command: Command, port: u16) -> (Handler, reqwest::Client, String) {
    let key = command.get_envs().find(|(name, _)| *name == "DISPATCHER_API_KEY").and_then(|(_, value)| value);
    let key = key.map_or(SERVE_KEY.to_owned(), |value| value.to_string_lossy().into_owned());
    command.env("DISPATCHER_API_KEY", &key);
    let handler = Handler(command.env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()).spawn().unwrap());
    let (client, base) = (operator_client(&key), format!("http://127.0.0.1:{port}"));
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
        store.put_webhook(&self::webhook(id, webhook), None).await.unwrap();
    }

    let log_file = std::env::temp_dir().join(format!("functions-serve-{}.log", std::process::id()));
    let log = Stdio::from(std::fs::File::create(&log_file).unwrap());
    let (_handler, client, base) = start_serve(&cosmos, "functions", &[], log).await;

    // The portal, as the host forwards the Portal function's requests: with their full path, /api/portal/...
    let page = client.get(format!("{base}/api/portal/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"<script type="module" src="app.js">"#));
    let script = client.get(format!("{base}/api/portal/app.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");

    // profile:completed AUTO maps to service:subscribed for wh2 and wh3, ids derived from MessageId.
    let body = r#"{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B"}}"#;
    let expected: Vec<Value> = ["wh2", "wh3"]
        .iter()
        .map(|webhook| {
            json!({"id": delivery_id("msg-5e0c", &(*webhook).into(), body).as_str(), "webhookId": webhook,
                   "event": "service:subscribed", "body": body, "sourceId": "msg-5e0c",
                   "correlationId": "corr-abc", "attemptsMade": 0})
        })
        .collect();
    for (i, encoding) in [
        "service-bus-base64.json",
        "service-bus-json-string.json",
        "service-bus-object.json",
        "service-bus-plain-metadata.json",
    ]
    .into_iter()
    .enumerate()
    {
        let (status, answer) = invoke(&client, &base, "OnIncomingEvent", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        let messages = answer["Outputs"]["deliveries"].as_array().unwrap_or_else(|| panic!("{encoding}: {answer}"));
        assert!(messages.iter().all(Value::is_string), "each message is JSON text: {answer}");
        let mut jobs: Vec<Value> =
            messages.iter().map(|m| serde_json::from_str(m.as_str().unwrap()).unwrap()).collect();
        // The first invocation logged the deliveries: its jobs carry the entries' versions, so that the first
        // attempt writes without a read. A redelivery finds them logged: its jobs vouch for nothing, and
        // DeliverWebhook reads the log before attempting them.
        let versions: Vec<Option<Value>> =
            jobs.iter_mut().map(|j| j.as_object_mut().unwrap().remove("logVersion")).collect();
        assert!(versions.iter().all(|v| v.is_some() == (i == 0)), "{encoding}: {versions:?}");
        // Each job carries the trace context of the routing that made it (tests/it/traces.rs follows it).
        let traces: Vec<Option<Value>> =
            jobs.iter_mut().map(|j| j.as_object_mut().unwrap().remove("traceparent")).collect();
        let traced = |t: &Option<Value>| t.as_ref().and_then(Value::as_str).is_some_and(|t| t.len() == 55);
        assert!(traces.iter().all(traced) && traces.windows(2).all(|w| w[0] == w[1]), "{encoding}: {traces:?}");
        assert_eq!(jobs, expected, "{encoding}: the same jobs whatever the encoding (a redelivery too)");
    }
    let logged = store.get_delivery(delivery_id("msg-5e0c", &"wh3".into(), body)).await.unwrap().expect("logged");
    assert_eq!((logged.status, logged.delivery.correlation_id.as_deref()), (Status::Pending, Some("corr-abc")));

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

/// The broker's connection string, for `handler serve`'s settings.
/// The settings of a `handler serve` whose jobs go to the broker at `connection`, retried after `retry_schedule`,
/// to receivers on this machine.
pub(crate) fn delivering_to<'a>(connection: &'a str, retry_schedule: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("ServiceBusConnection", connection),
        ("DELIVERIES_QUEUE", "deliveries"),
        ("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true"),
        ("DISPATCHER_RETRY_SCHEDULE", retry_schedule),
    ]
}

pub(crate) fn service_bus(broker: &ServiceBusBroker) -> String {
    broker.connection_string(crate::support::servicebus::EMULATOR_KEY)
}

/// DeliverWebhook and OnDeliveryDeadLettered on the fixtures: one attempt per invocation, a retryable failure
/// scheduled on the deliveries queue, a redelivered job that sends nothing, and the dead path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_webhook_attempts_once_and_schedules_the_retry() {
    let cosmos = start_cosmos_server();
    let store = cosmos_store(&cosmos, "deliver").await;
    let receivers = Receivers::start().await;
    receivers.behave("wh1", Behaviour { status: 503, ..Default::default() });
    let wh1 = webhook(
        "wh1",
        json!({"url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"},
                                    "failureCallbackUrl": receivers.url("callback")}),
    );
    store.put_webhook(&wh1, None).await.unwrap();
    let broker = start_servicebus_broker();
    let connection = service_bus(&broker);
    let settings = delivering_to(&connection, "1m,1m");
    let (_handler, client, base) = start_serve(&cosmos, "deliver", &settings, Stdio::null()).await;
    let id = "dlv_e02cdc1c690f6a5eb73152a53a985ab1";
    let body = r#"{"name":"ping","payload":{}}"#;
    assert_eq!(delivery_id("msg-7a41", &"wh1".into(), body).as_str(), id, "the fixtures' job");
    let logged = || async { store.get_delivery(DeliveryId::parse(id).unwrap()).await.unwrap().unwrap() };

    // Attempt 1 fails with 503: answered 2xx, the job scheduled for attempt 2, its MessageId naming the attempt.
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", fixture("deliver-webhook-base64.json")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Outputs"], json!({}), "nothing for the output bindings");
    let line = answer["Logs"][0].as_str().unwrap();
    assert!(line.starts_with(&format!("delivery {id} attempt 1: HTTP 503, retried at ")), "{line}");
    let scheduled = broker.next_message();
    assert_eq!(
        (scheduled["queue"].as_str(), scheduled["message_id"].as_str()),
        (Some("deliveries"), Some(&*format!("{id}-1")))
    );
    let at = scheduled["scheduled_enqueue_time"].as_i64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(at - now > 40_000, "about a minute later (1m ± 20 %): {} ms", at - now);
    let job: Value = serde_json::from_str(scheduled["body"].as_str().unwrap()).unwrap();
    assert_eq!((job["id"].as_str(), job["attemptsMade"].as_u64()), (Some(id), Some(1)));
    assert_eq!((logged().await.status, logged().await.attempts.len()), (Status::Retrying, 1));

    // The same job again, in the other encodings (a redelivered message): its attempt is logged already, so
    // nothing is sent and nothing scheduled.
    for encoding in ["deliver-webhook-json-string.json", "deliver-webhook-object.json"] {
        let (status, answer) = invoke(&client, &base, "DeliverWebhook", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        let line = answer["Logs"][0].as_str().unwrap();
        assert!(
            line.starts_with(&format!("delivery {id}: nothing sent, a duplicate job: attempt 1")),
            "{encoding}: {line}"
        );
    }
    assert_eq!(receivers.at("wh1").len(), 1, "one attempt sent");

    // The scheduled job comes back: attempt 2 succeeds, with the same webhook-id.
    receivers.behave("wh1", Behaviour::default());
    let invocation = json!({"Data": {"msg": job}, "Metadata": {"MessageId": format!("{id}-1"), "DeliveryCount": "1"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
    assert_eq!(
        (status, answer["Logs"][0].as_str()),
        (200, Some(format!("delivery {id} attempt 2: HTTP 200, delivered").as_str()))
    );
    let received = receivers.at("wh1");
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.header("webhook-id") == Some(id) && r.verify(wh1.secret.expose())));
    assert_eq!(received[1].body, body.as_bytes(), "the exact body");
    assert_eq!(received[1].header("x-correlation-id"), Some("corr-abc"));
    assert_eq!((logged().await.status, logged().await.attempts.len()), (Status::Succeeded, 2));
    // Delivered again by Service Bus (its lock was lost, say): the delivery is settled, nothing is sent.
    let again = json!({"Data": {"msg": job}, "Metadata": {"MessageId": format!("{id}-1"), "DeliveryCount": "2"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", again.to_string().into_bytes()).await;
    let line = answer["Logs"][0].as_str().unwrap();
    assert_eq!(
        (status, line),
        (200, format!("delivery {id}: nothing sent, a duplicate job: delivery {id} is succeeded already").as_str())
    );
    assert_eq!(receivers.at("wh1").len(), 2);

    // Service Bus dead-lettered a job itself: the dead path, with the failure callback, a delivery of its own
    // queued once, however often the dead-lettered job is told of (here in either encoding).
    let reason = "Service Bus dead-lettered the delivery job: MaxDeliveryCountExceeded (Message could not be consumed after 10 delivery attempts.)";
    for encoding in ["dead-lettered-base64.json", "dead-lettered-json-string.json"] {
        let (status, answer) = invoke(&client, &base, "OnDeliveryDeadLettered", fixture(encoding)).await;
        assert_eq!(status, 200, "{encoding}: {answer}");
        assert_eq!(answer["Outputs"], json!({}), "{encoding}");
        assert_eq!(answer["Logs"][0].as_str(), Some(format!("delivery {id} dead: {reason}").as_str()), "{encoding}");
        let entry = logged().await;
        assert_eq!((entry.status, entry.dead_reason.as_deref()), (Status::Dead, Some(reason)), "{encoding}");
    }
    let queued = broker.next_message();
    let callback_job: Value = serde_json::from_str(queued["body"].as_str().unwrap()).unwrap();
    assert_eq!(callback_job["event"], "DeliveryFailure", "{queued}");
    let callback_id = callback_job["id"].as_str().unwrap().to_owned();
    let invocation =
        json!({"Data": {"msg": callback_job}, "Metadata": {"MessageId": callback_id, "DeliveryCount": "1"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
    assert_eq!(
        (status, answer["Logs"][0].as_str()),
        (200, Some(format!("delivery {callback_id} attempt 1: HTTP 200, delivered").as_str()))
    );
    let callbacks = receivers.at("callback");
    assert_eq!(callbacks.len(), 1);
    assert!(callbacks[0].verify(wh1.secret.expose()), "signed like a delivery");
    assert_eq!(callbacks[0].header("webhook-id"), Some(callback_id.as_str()));
    assert_eq!(
        callbacks[0].json(),
        json!({"callbackType": "DeliveryFailure", "deliveryId": id, "webhookId": "wh1", "eventType": "ping",
               "payload": {}, "statusCode": 200, "attempts": 3})
    );

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
    let (cosmos, _store, receivers) = with_one_webhook("spans").await;
    let log_file = support::temp_dir("serve-spans").join("handler.log");
    let settings = [
        ("DELIVERIES_QUEUE", "deliveries"),
        ("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true"),
        ("DISPATCHER_LOG", "info"),
        ("DISPATCHER_LOG_FORMAT", "json"),
    ];
    let log = Stdio::from(std::fs::File::create(&log_file).unwrap());
    let (_handler, client, base) = start_serve(&cosmos, "spans", &settings, log).await;

    // Sixteen attempts at once, of sixteen deliveries, on the handler's two threads.
    let body = r#"{"name":"ping","payload":{}}"#;
    let ids: Vec<String> = (0..16).map(|i| delivery_id(&format!("msg-{i}"), &"wh1".into(), body).to_string()).collect();
    let mut invocations = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let job = json!({"id": id, "webhookId": "wh1", "event": "ping", "body": body,
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

/// On Azure a delivery made in one attempt costs two Cosmos DB requests: OnIncomingEvent creates its log entry
/// (all of an event's at once), and its attempt replaces the entry without reading it first, the job carrying
/// the version it was made from. Counted from the local server's request log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_costs_two_cosmos_requests() {
    let log = support::temp_dir("cosmos-requests").join("requests.log");
    let cosmos = start_cosmos_server_with(&[("COSMOS_REQUEST_LOG", log.to_str().unwrap())]);
    let store = cosmos_store(&cosmos, "requests").await;
    let receivers = Receivers::start().await;
    let n = 20;
    for i in 0..n {
        let config = json!({"url": receivers.url("service"), "subscriptions": ["service:subscribed"],
                            "attributes": {"serviceId": format!("service-{i}")}});
        store.put_webhook(&webhook(&format!("wh-{i}"), config), None).await.unwrap();
    }
    let settings = [("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")];
    let (_handler, client, base) = start_serve(&cosmos, "requests", &settings, Stdio::null()).await;
    let requests =
        || std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains("/colls/deliveries/docs")).count();
    let before = requests();

    let (status, answer) = invoke(&client, &base, "OnIncomingEvent", fixture("service-bus-base64.json")).await;
    assert_eq!(status, 200, "{answer}");
    let jobs = answer["Outputs"]["deliveries"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), n);
    for job in &jobs {
        let invocation = json!({"Data": {"msg": job}, "Metadata": {"MessageId": "m", "DeliveryCount": "1"}});
        let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
        assert!(status == 200 && answer["Logs"][0].as_str().unwrap().ends_with("HTTP 200, delivered"), "{answer}");
    }
    assert_eq!(receivers.at("service").len(), n);
    assert_eq!(requests() - before, 2 * n, "two requests per delivery on the deliveries' documents");
}
