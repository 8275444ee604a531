//! `handler serve` driven the way the Functions host drives it (../shared/reference/azure-functions-custom-handler.md):
//! a separate process started with FUNCTIONS_CUSTOMHANDLER_PORT and no arguments, readiness on `GET /`, and
//! invocations posted to `/{FunctionName}`, with Cosmos DB from the local server.

#[path = "support/cosmos.rs"]
mod cosmos_server;

use cosmos_server::{start_cosmos_server, EMULATOR_KEY};
use dispatcher::dispatch::delivery_id;
use dispatcher::local::new_webhook;
use dispatcher::store::cosmos::{CosmosConfig, CosmosStore};
use dispatcher::store::{DeliveryLog, RejectedEvents, Status, Webhooks};
use dispatcher::webhooks::WebhookConfig;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_incoming_event_outputs_the_delivery_jobs_and_records_what_it_rejects() {
    let cosmos = start_cosmos_server();
    let config = CosmosConfig {
        endpoint: cosmos.endpoint.clone(),
        key: EMULATOR_KEY.into(),
        database: "functions".into(),
        create_if_missing: true,
        retention_days: 30,
    };
    let store = CosmosStore::connect(&config).await.unwrap();
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

    let port = free_port();
    let log_file = std::env::temp_dir().join(format!("functions-serve-{}.log", std::process::id()));
    let _handler = Handler(
        Command::new(env!("CARGO_BIN_EXE_handler"))
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("COSMOSDB_ENDPOINT", &cosmos.endpoint)
            .env("COSMOSDB_KEY", EMULATOR_KEY)
            .env("COSMOSDB_DATABASE", "functions")
            .env("DISPATCHER_WEBHOOK_CACHE_SECONDS", "0")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_file).unwrap())
            .spawn()
            .unwrap(),
    );
    let (client, base) = (reqwest::Client::new(), format!("http://127.0.0.1:{port}"));
    let started = Instant::now();
    while !client.get(format!("{base}/")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < Duration::from_secs(20), "GET / never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

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
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    for problem in [
        "FUNCTIONS_CUSTOMHANDLER_PORT: missing",
        "COSMOSDB_ENDPOINT: missing",
        "DISPATCHER_RETENTION_DAYS: \"0\" is not a number of days from 1 to 3650",
    ] {
        assert!(stderr.contains(problem), "{problem}: {stderr}");
    }
    assert!(!stderr.contains("s3cret-key-value"));
}
