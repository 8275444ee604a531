//! No secret leaves the dispatcher: with `DISPATCHER_ENCRYPTION_KEY`, every credential a webhook holds is used
//! on the wire but found in no log line, no API answer, no attempt log and no byte of either store; a wrong key
//! is a start-up error.

use crate::functions_serve::{cosmos_store, start_serve};
use crate::support::cosmos::start_cosmos_server;
use crate::support::{eventually, Dispatcher, Receivers};
use dispatcher::ports::WebhookStore;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "ZGlzcGF0Y2hlci10ZXN0LWtleS0zMi1ieXRlcy1vayE=";
const OTHER_KEY: &str = "YW5vdGhlci0tdGVzdC1rZXktMzItYnl0ZXMtb2shISE=";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/tls").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A webhook holding one secret of every kind, and those secrets (the private key by its base64 body).
fn registration(receivers: &Receivers, name: &str) -> (Value, Vec<String>) {
    let key = fixture("client.key");
    let key_body = key.lines().nth(1).unwrap().to_owned();
    let body = json!({
        "url": receivers.url(name), "subscriptions": ["ping"], "attributes": {"name": name},
        "headers": {"x-api-key": "header-api-k3y"},
        "auth": {"type": "basic", "username": "dispatcher", "password": "basic-pa55word"},
        "callbackUrl": receivers.url(&format!("{name}-callback")),
        "callbackAuth": {"type": "oauth2", "tokenUrl": "http://127.0.0.1:9/token", "clientId": "dispatcher",
                         "clientSecret": "oauth-client-s3cret"},
        "failureCallbackUrl": receivers.url(&format!("{name}-failed")),
    });
    let mtls = json!({"type": "mtls", "certificate": fixture("client.pem"), "privateKey": key});
    let secrets = ["header-api-k3y", "basic-pa55word", "oauth-client-s3cret", &key_body].map(str::to_owned);
    let mut body = body;
    body["x-mtls"] = mtls;
    (body, secrets.to_vec())
}

/// Every byte under `dir`, as text.
fn bytes_under(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_file() {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_in_the_logs_the_api_or_the_local_store_and_a_wrong_key_stops_the_start() {
    let receivers = Receivers::start().await;
    let dir = crate::support::temp_dir("secrets");
    let (data, log) = (dir.join("data"), dir.join("handler.log"));
    let env = [("DISPATCHER_ENCRYPTION_KEY", KEY), ("DISPATCHER_LOG", "debug")];
    let mut dispatcher = Dispatcher::start_on(&data, &log, &["--retry-schedule", "1h"], &env);
    let (mut body, mut secrets) = registration(&receivers, "sealed");
    let mtls = body.as_object_mut().unwrap().remove("x-mtls").unwrap();
    let (id, signing_secret) = dispatcher.register(body).await;
    let (mtls_id, _) = dispatcher
        .register(json!({"url": receivers.url("mtls"), "subscriptions": ["ping"], "attributes": {"name": "mtls"},
                         "auth": mtls}))
        .await;
    secrets.push(signing_secret.clone());
    for name in ["sealed", "mtls"] {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": name}})).await;
    }

    // The secrets work where they are meant to: the receiver's credentials and header arrive.
    eventually("the deliveries", WAIT, || !receivers.at("sealed").is_empty() && !receivers.at("mtls").is_empty()).await;
    let delivered = &receivers.at("sealed")[0];
    assert_eq!(delivered.header("x-api-key"), Some("header-api-k3y"));
    assert_eq!(delivered.header("authorization"), Some("Basic ZGlzcGF0Y2hlcjpiYXNpYy1wYTU1d29yZA=="));
    assert!(delivered.verify(&signing_secret));

    // The success callback cannot get its token (nothing listens on port 9): its attempt is logged.
    let path = format!("/webhooks/{id}/deliveries");
    let mut answers = String::new();
    let started = std::time::Instant::now();
    loop {
        let page = dispatcher.get(&path).await;
        let callback = page["items"].as_array().unwrap().iter().find(|d| d["event"] == "Callback").cloned();
        if let Some(callback) = callback.filter(|c| !c["attempts"][0].is_null()) {
            let error = callback["attempts"][0]["error"].as_str().unwrap_or_default().to_owned();
            assert!(error.contains("the token endpoint http://127.0.0.1:9/token"), "{callback}");
            answers.push_str(&page.to_string());
            break;
        }
        assert!(started.elapsed() < WAIT, "no attempt of the callback: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for path in ["/webhooks".to_owned(), format!("/webhooks/{id}"), format!("/webhooks/{mtls_id}"), "/info".into()] {
        answers.push_str(&dispatcher.get(&path).await.to_string());
    }
    dispatcher.terminate();
    let (logs, stored) = (dispatcher.logs(), bytes_under(&data));
    assert!(stored.contains("enc:v1:"), "the store holds sealed values");
    assert!(logs.contains("attempted"), "the logs are the handler's: {logs}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the logs");
        assert!(!stored.contains(secret.as_str()), "{secret} is in the store");
        // Header values are shown back, as registered (GET and PATCH read and write them): only sealed at rest.
        if secret != "header-api-k3y" {
            assert!(!answers.contains(secret.as_str()), "{secret} is in an API answer");
        }
    }

    // Another key, or none, does not open them: the dispatcher says so and does not start.
    for key in [Some(OTHER_KEY), None] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
        command.args(["local", "--port", "0", "--data-dir"]).arg(&data).env_remove("DISPATCHER_ENCRYPTION_KEY");
        if let Some(key) = key {
            command.env("DISPATCHER_ENCRYPTION_KEY", key);
        }
        let output = command.stdout(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{key:?}: {stderr}");
        let expected = if key.is_some() { "does not open with DISPATCHER_ENCRYPTION_KEY" } else { "are encrypted" };
        assert!(stderr.contains(expected), "{key:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_azure_cosmos_db_holds_only_sealed_secrets() {
    let cosmos = start_cosmos_server();
    let raw = cosmos_store(&cosmos, "sealed").await;
    let receivers = Receivers::start().await;
    let settings = [("DISPATCHER_ENCRYPTION_KEY", KEY), ("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")];
    let (_handler, client, base) = start_serve(&cosmos, "sealed", &settings, Stdio::null()).await;
    let (mut body, secrets) = registration(&receivers, "cosmos");
    body.as_object_mut().unwrap().remove("x-mtls");
    let created = client.post(format!("{base}/api/v1/webhooks")).json(&body).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap();

    let item = serde_json::to_string(&raw.get_webhook(&id.into()).await.unwrap().unwrap().0).unwrap();
    assert!(item.contains("enc:v1:"), "{item}");
    for secret in secrets.iter().chain([&created["secret"].as_str().unwrap().to_owned()]) {
        assert!(!item.contains(secret.as_str()), "{secret} is in Cosmos DB: {item}");
    }
    let shown: Value = client.get(format!("{base}/api/v1/webhooks/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["headers"]["x-api-key"], "header-api-k3y", "opened for the API, which shows headers");
    assert_eq!(shown["auth"], json!({"type": "basic", "username": "dispatcher"}));
}
