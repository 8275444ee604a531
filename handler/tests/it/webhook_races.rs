//! Changes to one webhook made at the same time never undo each other, on both runtimes: `handler local`
//! (SQLite) and `handler serve` (the local Cosmos DB server, with attempts made by DeliverWebhook invocations).
//! An attempt answered 410 while the secret is rotated keeps the new secret; a PATCH during the attempt that
//! disables a failing webhook keeps the patched field; PATCHes of different fields all land; and a client's
//! `If-Match` with a stale ETag, or one that names no version, is refused with 412.

use crate::functions_serve::{cosmos_store, delivering_to, invoke, service_bus, start_serve, Handler};
use crate::support::cosmos::{start_cosmos_server, CosmosServer};
use crate::support::servicebus::{start_servicebus_broker, ServiceBusBroker};
use crate::support::{eventually, eventually_async, Behaviour, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
/// Every failed attempt counts toward auto-disable at once: the third in a row disables the webhook.
const DISABLE_AFTER: &str = "1ms";

/// A runtime under test: its API, and how an attempt of a delivery is made on it.
enum Runtime {
    Local(Dispatcher),
    Azure { _handler: Handler, client: reqwest::Client, base: String, broker: ServiceBusBroker, _cosmos: CosmosServer },
}

struct Answered {
    status: u16,
    etag: Option<String>,
    body: Value,
}

impl Runtime {
    fn local() -> Runtime {
        let env = [("DISPATCHER_DISABLE_AFTER", DISABLE_AFTER)];
        Runtime::Local(Dispatcher::start("races", &["--retry-schedule", "1h"], &env))
    }

    async fn azure() -> Runtime {
        let cosmos = start_cosmos_server();
        cosmos_store(&cosmos, "races").await;
        let broker = start_servicebus_broker();
        let connection = service_bus(&broker);
        let mut settings = delivering_to(&connection, "1h");
        settings.push(("DISPATCHER_DISABLE_AFTER", DISABLE_AFTER));
        let (handler, client, base) = start_serve(&cosmos, "races", &settings, std::process::Stdio::null()).await;
        Runtime::Azure { _handler: handler, client, base, broker, _cosmos: cosmos }
    }

    fn client_and_api(&self) -> (&reqwest::Client, String) {
        match self {
            Runtime::Local(dispatcher) => (&dispatcher.client, dispatcher.api.clone()),
            Runtime::Azure { client, base, .. } => (client, format!("{base}/api/v1")),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>, if_match: Option<&str>) -> Answered {
        let (client, api) = self.client_and_api();
        let mut request = client.request(method.parse().unwrap(), format!("{api}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        Answered { status, etag, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
    }

    async fn get(&self, path: &str) -> Value {
        let answered = self.call("GET", path, None, None).await;
        assert_eq!(answered.status, 200, "GET {path}: {}", answered.body);
        answered.body
    }

    async fn register(&self, receivers: &Receivers, path: &str) -> String {
        let body = json!({"url": receivers.url(path), "subscriptions": ["ping"], "attributes": {"name": path}});
        let created = self.call("POST", "/webhooks", Some(body), None).await;
        assert_eq!(created.status, 201, "{}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }

    /// Starts an attempt of a ping to webhook `id`; the task ends when the attempt is recorded (on Azure, when
    /// its invocation is answered; locally, the workers make it and the task ends at once).
    async fn attempt(&self, id: &str) -> tokio::task::JoinHandle<()> {
        let queued = self.call("POST", &format!("/webhooks/{id}/ping"), None, None).await;
        assert_eq!(queued.status, 202, "{}", queued.body);
        let delivery = queued.body["id"].as_str().unwrap().to_owned();
        match self {
            Runtime::Local(_) => tokio::spawn(async {}),
            Runtime::Azure { client, base, broker, .. } => {
                // The ping's job for its first attempt (`{delivery id}-0`), as the broker got it; retries of
                // earlier attempts come in between.
                let first = format!("{delivery}-0");
                let message = tokio::task::block_in_place(|| loop {
                    let message = broker.next_message();
                    if message["message_id"] == first.as_str() {
                        return message;
                    }
                });
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move {
                    let job: Value = serde_json::from_str(message["body"].as_str().unwrap()).unwrap();
                    let invocation = json!({"Data": {"msg": job}, "Metadata": {"MessageId": message["message_id"], "DeliveryCount": "1"}});
                    let (status, answer) =
                        invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
                    assert_eq!(status, 200, "{answer}");
                })
            }
        }
    }
}

async fn an_attempt_answered_410_during_a_rotation_keeps_the_new_secret(runtime: &Runtime, receivers: &Receivers) {
    let id = runtime.register(receivers, "gone").await;
    receivers.behave("gone", Behaviour { status: 410, delay: Duration::from_millis(1500), ..Behaviour::default() });
    let attempt = runtime.attempt(&id).await;
    eventually("the attempt in flight", WAIT, || receivers.arrived("gone") == 1).await;
    let rotated = runtime.call("POST", &format!("/webhooks/{id}/rotate-secret"), None, None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert!(receivers.at("gone").is_empty(), "rotated while the attempt was still waiting for its answer");
    attempt.await.unwrap();
    eventually_async("the webhook disabled by its 410", WAIT, || async {
        runtime.get(&format!("/webhooks/{id}")).await["disabled"] == true
    })
    .await;
    let secret = runtime.get(&format!("/webhooks/{id}/secret")).await;
    assert_eq!(secret["secret"], rotated.body["secret"], "the rotation survives the disable");
    assert_eq!(secret["previousSecret"], rotated.body["previousSecret"]);
}

async fn a_patch_during_the_attempt_that_disables_a_failing_webhook_survives(runtime: &Runtime, receivers: &Receivers) {
    let id = runtime.register(receivers, "failing").await;
    receivers.behave("failing", Behaviour { status: 500, ..Behaviour::default() });
    for n in 1..=2 {
        runtime.attempt(&id).await.await.unwrap();
        eventually_async("the failure streak", WAIT, || async {
            let deliveries = runtime.get(&format!("/webhooks/{id}/deliveries")).await;
            let items = deliveries["items"].as_array().unwrap().clone();
            items.len() == n && items.iter().all(|d| d["attempts"].as_array().is_some_and(|a| a.len() == 1))
        })
        .await;
    }
    receivers.behave("failing", Behaviour { status: 500, delay: Duration::from_millis(1500), ..Behaviour::default() });
    let third = runtime.attempt(&id).await;
    eventually("the third attempt in flight", WAIT, || receivers.arrived("failing") == 3).await;
    let patch = json!({"description": "patched during the attempt"});
    let patched = runtime.call("PATCH", &format!("/webhooks/{id}"), Some(patch), None).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(receivers.at("failing").len(), 2, "patched while the third attempt was still waiting for its answer");
    third.await.unwrap();
    eventually_async("the webhook auto-disabled", WAIT, || async {
        runtime.get(&format!("/webhooks/{id}")).await["disabled"] == true
    })
    .await;
    let webhook = runtime.get(&format!("/webhooks/{id}")).await;
    assert_eq!(webhook["description"], "patched during the attempt", "{webhook}");
    assert!(webhook["disabledReason"].as_str().unwrap().contains("every attempt failed"), "{webhook}");
}

async fn patches_of_different_fields_at_once_all_land(runtime: &Runtime, receivers: &Receivers) {
    let id = runtime.register(receivers, "patched").await;
    let patches = (0..12).map(|n| {
        let path = format!("/webhooks/{id}");
        async move {
            let patch = json!({"attributes": {format!("k{n}"): format!("v{n}")}});
            runtime.call("PATCH", &path, Some(patch), None).await.status
        }
    });
    let statuses = futures_util::future::join_all(patches).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let attributes = runtime.get(&format!("/webhooks/{id}")).await["attributes"].clone();
    for n in 0..12 {
        assert_eq!(attributes[format!("k{n}")], format!("v{n}"), "patch {n} was lost: {attributes}");
    }
}

async fn a_change_from_a_stale_etag_is_refused_with_412(runtime: &Runtime, receivers: &Receivers) {
    let id = runtime.register(receivers, "tagged").await;
    let path = format!("/webhooks/{id}");
    let read = runtime.call("GET", &path, None, None).await;
    let first = read.etag.expect("an ETag on GET");
    let patched = runtime.call("PATCH", &path, Some(json!({"description": "one"})), Some(&first)).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let second = patched.etag.expect("an ETag on PATCH");
    assert_ne!(first, second);

    let replacement = json!({"url": read.body["url"], "subscriptions": ["ping"], "attributes": {"name": "tagged"},
                             "description": "from a stale read"});
    let stale = runtime.call("PUT", &path, Some(replacement.clone()), Some(&first)).await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    assert_eq!(stale.body["type"], "urn:dispatcher:problem:precondition-failed");
    assert_eq!(runtime.get(&path).await["description"], "one", "nothing changed");
    let weak = runtime.call("PUT", &path, Some(replacement.clone()), Some(&format!("W/{second}"))).await;
    assert_eq!(weak.status, 412, "If-Match compares strongly: {}", weak.body);
    let listed = format!("{first}, {second}");
    let current = runtime.call("PUT", &path, Some(replacement), Some(&listed)).await;
    assert_eq!((current.status, current.body["description"].as_str()), (200, Some("from a stale read")));
    // A value that names no version this server gave out is a precondition that cannot hold; an empty one says
    // nothing.
    for malformed in ["no-quotes", "*, \"x\""] {
        let answered = runtime.call("PATCH", &path, Some(json!({"description": "never"})), Some(malformed)).await;
        assert_eq!(answered.status, 412, "If-Match: {malformed:?}: {}", answered.body);
    }
    assert_eq!(runtime.get(&path).await["description"], "from a stale read", "nothing changed");
    let empty = runtime.call("PATCH", &path, Some(json!({"description": "no precondition"})), Some(" , ")).await;
    assert_eq!(empty.status, 200, "{}", empty.body);
}

async fn the_race_suite(runtime: Runtime) {
    let receivers = Receivers::start().await;
    an_attempt_answered_410_during_a_rotation_keeps_the_new_secret(&runtime, &receivers).await;
    a_patch_during_the_attempt_that_disables_a_failing_webhook_survives(&runtime, &receivers).await;
    patches_of_different_fields_at_once_all_land(&runtime, &receivers).await;
    a_change_from_a_stale_etag_is_refused_with_412(&runtime, &receivers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_keeps_every_concurrent_change_to_a_webhook() {
    the_race_suite(Runtime::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_every_concurrent_change_to_a_webhook() {
    the_race_suite(Runtime::azure().await).await;
}
