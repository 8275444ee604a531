//! `handler local` as users run it: a separate process, real HTTP receivers, the API over HTTP.

use crate::support::{eventually, eventually_async, Behaviour, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::time::Duration;

const FC: &str = "AAABBB00A00A000B";
const WAIT: Duration = Duration::from_secs(20);

/// The three webhooks of the original integration set-up, registered through the API.
async fn original_webhooks(dispatcher: &Dispatcher, receivers: &Receivers) -> Vec<(String, String)> {
    let mut registered = Vec::new();
    for body in [
        json!({"id": "wh1", "url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"}}),
        json!({"id": "wh2", "url": receivers.url("wh2"), "subscriptions": "ping,service:subscribed",
               "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}, "headers": {"x-api-key": "wh2-key"}}),
        json!({"id": "wh3", "url": receivers.url("wh3"), "subscriptions": ["service:subscribed"], "attributes": {"serviceId": "aServiceId09876"}}),
    ] {
        registered.push(dispatcher.register(body).await);
    }
    registered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_scenarios_are_delivered_signed_with_exact_bodies() {
    original_scenarios(Dispatcher::start("scenarios", &[], &[])).await;
}

/// The built-in catalog file as an operator starts from it: printed by `handler catalog show`, saved, and
/// named by `DISPATCHER_CATALOG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_scenarios_run_the_same_on_a_copy_of_the_built_in_catalog_file() {
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_handler")).args(["catalog", "show"]).output().unwrap();
    assert!(shown.status.success());
    let copy = std::env::temp_dir().join(format!("io-catalog-{}.json", std::process::id()));
    std::fs::write(&copy, &shown.stdout).unwrap();
    let copy = copy.to_str().unwrap();
    original_scenarios(Dispatcher::start("scenarios-copy", &[], &[("DISPATCHER_CATALOG", copy)])).await;
}

async fn original_scenarios(dispatcher: Dispatcher) {
    let receivers = Receivers::start().await;
    let secrets = original_webhooks(&dispatcher, &receivers).await;
    let profile = |name: &str, mode: &str| json!({"name": name, "payload": {"fiscalCode": FC, "servicePreferencesMode": mode, "oldServicePreferencesMode": "LEGACY"}});
    let events = [
        json!({"name": "ping", "payload": {"name": "wh1"}}),
        json!({"name": "ping", "payload": {"name": "wh2"}}),
        json!({"name": "ping:all"}),
        json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "aServiceId12345"}}),
        json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "aServiceId09876"}}),
        json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "unmapped"}}),
        profile("profile:completed", "AUTO"),
        profile("profile:completed", "MANUAL"),
        profile("profile:service-preferences-changed", "AUTO"),
        profile("profile:service-preferences-changed", "MANUAL"),
    ];
    let mut expected_total = 0;
    for event in events {
        expected_total += dispatcher.publish(event).await["deliveries"].as_u64().unwrap();
    }
    // wh1: 2 pings; wh2: 2 pings, 1 direct + 2 remapped subscriptions; wh3: 1 direct + 2 remapped.
    assert_eq!(expected_total, 10);
    eventually("all ten deliveries", WAIT, || receivers.all().len() == 10).await;

    let ping = json!({"name": "ping", "payload": {}});
    let subscribed = json!({"name": "service:subscribed", "payload": {"fiscalCode": FC}});
    let bodies = |path: &str| receivers.at(path).iter().map(|r| r.json()).collect::<Vec<Value>>();
    assert_eq!(bodies("wh1"), [ping.clone(), ping.clone()]);
    let mut wh2 = bodies("wh2");
    wh2.sort_by_key(|b| b.to_string());
    assert_eq!(wh2, [ping.clone(), ping.clone(), subscribed.clone(), subscribed.clone(), subscribed.clone()]);
    assert_eq!(bodies("wh3"), [subscribed.clone(), subscribed.clone(), subscribed.clone()]);

    for (path, (_, secret)) in ["wh1", "wh2", "wh3"].iter().zip(&secrets) {
        for request in receivers.at(path) {
            assert!(request.verify(secret), "{path}: the signature does not verify");
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert!(request.header("webhook-id").unwrap().starts_with("dlv_"));
        }
    }
    assert!(
        receivers.at("wh2").iter().all(|r| r.header("x-api-key") == Some("wh2-key")),
        "configured headers are sent"
    );
    // A receiver records the request before the dispatcher has read its answer, so the counter may lag.
    eventually_async("the counter shows ten deliveries", WAIT, || async {
        let info = dispatcher.get("/info").await;
        info["mode"] == "local" && info["counters"]["delivered"] == 10
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_k_times_gets_the_delivery_on_attempt_k_plus_one_with_the_same_id() {
    let receivers = Receivers::start().await;
    receivers.behave("flaky", Behaviour { fail_first: 3, ..Behaviour::default() });
    let dispatcher = Dispatcher::start("retries", &["--retry-schedule", "50ms,50ms,50ms,50ms"], &[]);
    let (_, secret) = dispatcher
        .register(json!({"url": receivers.url("flaky"), "subscriptions": ["ping"], "attributes": {"name": "f"}}))
        .await;
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "f"}})).await;
    eventually("four attempts", WAIT, || receivers.at("flaky").len() == 4).await;
    let attempts = receivers.at("flaky");
    let id = attempts[0].header("webhook-id").unwrap().to_owned();
    assert!(attempts.iter().all(|r| r.header("webhook-id") == Some(id.as_str()) && r.verify(&secret)));
    eventually_async("the log shows four attempts", WAIT, || async {
        let delivery = dispatcher.get(&format!("/deliveries/{id}")).await;
        delivery["status"] == "succeeded" && delivery["attempts"].as_array().unwrap().len() == 4
    })
    .await;
    let delivery = dispatcher.get(&format!("/deliveries/{id}")).await;
    let codes: Vec<Value> = delivery["attempts"].as_array().unwrap().iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(codes, [json!(503), json!(503), json!(503), json!(200)]);
    assert_eq!(delivery["payload"], json!({"name": "ping", "payload": {}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receivers_end_dead_with_a_callback_while_a_healthy_one_gets_everything() {
    let receivers = Receivers::start().await;
    receivers.behave("rejects", Behaviour { status: 400, ..Behaviour::default() });
    receivers.behave("slow", Behaviour { delay: Duration::from_secs(5), ..Behaviour::default() });
    let refusing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/nobody")
    };
    let dispatcher = Dispatcher::start(
        "dead",
        &["--retry-schedule", "100ms,100ms", "--request-timeout", "400ms", "--concurrency", "8"],
        &[],
    );
    let callback = receivers.url("callbacks");
    let mut ids = Vec::new();
    for (name, url) in [("rejects", receivers.url("rejects")), ("slow", receivers.url("slow")), ("refusing", refusing)]
    {
        let (id, _) = dispatcher
            .register(json!({"url": url, "subscriptions": ["service:subscribed"], "attributes": {"serviceId": name}, "failureCallbackUrl": callback}))
            .await;
        ids.push((name, id));
    }
    let (_, healthy_secret) = dispatcher
        .register(
            json!({"url": receivers.url("healthy"), "subscriptions": ["ping"], "attributes": {"name": "healthy"}}),
        )
        .await;
    for (name, _) in &ids {
        dispatcher
            .publish(json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": name}}))
            .await;
    }
    for _ in 0..20 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "healthy"}})).await;
    }
    eventually("the healthy webhook gets all 20", WAIT, || receivers.at("healthy").len() == 20).await;
    assert!(receivers.at("healthy").iter().all(|r| r.verify(&healthy_secret)));
    eventually("three failure callbacks", WAIT, || receivers.at("callbacks").len() == 3).await;

    for (name, webhook_id) in &ids {
        let deliveries = dispatcher.get(&format!("/webhooks/{webhook_id}/deliveries")).await;
        // The failure callback is listed too, as a delivery of its own.
        let items = deliveries["items"].as_array().unwrap();
        let delivery = items.iter().find(|d| d["event"] == "service:subscribed").unwrap();
        assert!(items.iter().any(|d| d["event"] == "DeliveryFailure"), "{deliveries}");
        assert_eq!(delivery["status"], "dead", "{name}: {delivery}");
        let attempts = delivery["attempts"].as_array().unwrap();
        let reason = delivery["deadReason"].as_str().unwrap();
        match *name {
            "rejects" => {
                assert_eq!(attempts.len(), 1, "400 is not retried");
                assert_eq!(reason, "HTTP 400 is not retried");
            }
            "slow" => {
                assert_eq!(attempts.len(), 3);
                assert!(reason.starts_with("gave up after 3 attempts; the last: timed out"), "{reason}");
            }
            _ => {
                assert_eq!(attempts.len(), 3);
                assert!(reason.starts_with("gave up after 3 attempts; the last: could not connect"), "{reason}");
            }
        }
        let callback = receivers
            .at("callbacks")
            .into_iter()
            .map(|r| r.json())
            .find(|c| c["webhookId"] == json!(webhook_id))
            .unwrap_or_else(|| panic!("no callback for {name}"));
        assert_eq!(callback["callbackType"], "DeliveryFailure");
        assert_eq!(callback["deliveryId"], delivery["id"]);
        assert_eq!(callback["eventType"], "service:subscribed");
        assert_eq!(callback["payload"], json!({"fiscalCode": FC}));
        assert_eq!(callback["attempts"], json!(attempts.len()));
        assert_eq!(callback["statusCode"], if *name == "rejects" { json!(400) } else { Value::Null });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_delivery_arrives_after_a_kill_9_and_a_restart() {
    let receivers = Receivers::start().await;
    receivers.behave("sink", Behaviour { delay: Duration::from_millis(20), ..Behaviour::default() });
    let mut dispatcher = Dispatcher::start("kill", &["--concurrency", "4"], &[]);
    let (webhook_id, _) = dispatcher
        .register(json!({"url": receivers.url("sink"), "subscriptions": ["ping"], "attributes": {"name": "sink"}}))
        .await;
    // Publish from several clients at once and kill the process while they are at it.
    let client = dispatcher::adapters::tls::client().unwrap();
    let mut publishers = Vec::new();
    for p in 0..4 {
        let (client, api) = (client.clone(), dispatcher.api.clone());
        publishers.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..200 {
                let sent = client
                    .post(format!("{api}/events"))
                    .header("idempotency-key", format!("p{p}-{i}"))
                    .json(&json!({"name": "ping", "payload": {"name": "sink"}}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 202 => accepted.push(format!("p{p}-{i}")),
                    _ => break,
                }
            }
            accepted
        }));
    }
    eventually("some deliveries under way", WAIT, || receivers.at("sink").len() >= 20).await;
    dispatcher.kill_9();
    let mut accepted = Vec::new();
    for publisher in publishers {
        accepted.extend(publisher.await.unwrap());
    }
    assert!(accepted.len() >= 20 && accepted.len() < 800, "the kill must land mid-burst: {} accepted", accepted.len());
    let before_restart = receivers.at("sink").len();
    dispatcher.restart();
    // Each accepted event made one delivery, whose id follows from the idempotency key (the source id).
    let expected: std::collections::HashSet<String> = accepted
        .iter()
        .map(|key| {
            dispatcher_core::dispatch::delivery_id(key, &webhook_id.as_str().into(), r#"{"name":"ping","payload":{}}"#)
                .to_string()
        })
        .collect();
    eventually("every accepted delivery", Duration::from_secs(60), || {
        let received: std::collections::HashSet<String> =
            receivers.at("sink").iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
        expected.is_subset(&received)
    })
    .await;
    assert!(receivers.at("sink").len() > before_restart, "the restarted process resumed the pending work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_specific_answer_and_the_process_keeps_serving() {
    let dispatcher = Dispatcher::start("bad-input", &[], &[]);
    let post = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let request =
            dispatcher.client.post(format!("{}{path}", dispatcher.api)).header("content-type", content_type).body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
            (status, content_type, response.json::<Value>().await.unwrap())
        }
    };
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("/events", "application/json", b"{not json".to_vec(), 400, "body: is not valid JSON"),
        ("/events", "application/json", br#"{"name":"nope"}"#.to_vec(), 400, "name: \"nope\" is not a known event"),
        (
            "/events",
            "application/json",
            br#"{"name":"ping","payload":{"name":3}}"#.to_vec(),
            400,
            "payload.name: 3 is a number",
        ),
        ("/events", "text/plain", br#"{"name":"ping:all"}"#.to_vec(), 415, "must be application/json"),
        ("/events", "application/json", vec![b' '; 300 * 1024], 413, "over the limit of 262144 bytes"),
        (
            "/webhooks",
            "application/json",
            br#"{"url":"ftp://x","subscriptions":["ping"]}"#.to_vec(),
            400,
            "url: \"ftp://x\" is not an http or https URL",
        ),
        (
            "/webhooks",
            "application/json",
            br#"{"url":"https://x.example","subscriptions":["nope"]}"#.to_vec(),
            400,
            "subscriptions[0]: \"nope\" is not a public event",
        ),
        (
            "/webhooks",
            "application/json",
            br#"{"url":"https://x.example","subscriptions":[],"headers":{"bad header":"v"}}"#.to_vec(),
            400,
            "headers.bad header: \"bad header\" is not a valid HTTP header name",
        ),
        ("/webhooks", "application/json", b"[]".to_vec(), 400, "body: [] is an array"),
    ];
    for (path, content_type, body, status, detail) in cases {
        let (got, got_type, problem) = post(path, content_type, body).await;
        assert_eq!(got, status, "{path} {detail}: {problem}");
        assert_eq!(got_type, "application/problem+json");
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{detail:?} not in {problem}");
        assert_eq!(problem["status"], json!(status));
    }
    let (status, missing) = dispatcher.call("GET", "/webhooks/nope", None).await;
    assert_eq!((status, missing["detail"].as_str()), (404, Some("webhook \"nope\" does not exist")));
    let (status, _) = dispatcher.call("GET", "/deliveries/dlv_nope", None).await;
    assert_eq!(status, 404);
    let rejected = dispatcher.get("/events/rejected").await;
    assert_eq!(rejected["items"].as_array().unwrap().len(), 4, "400s and the 413 are recorded: {rejected}");
    assert_eq!(rejected["items"][0]["problems"][0]["path"], "body", "newest first: the oversized body");
    assert_eq!(dispatcher.get("/info").await["counters"]["rejected"], json!(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_with_a_backlog_does_not_hold_up_the_others() {
    let receivers = Receivers::start().await;
    receivers.behave("slow", Behaviour { delay: Duration::from_millis(400), ..Behaviour::default() });
    // Four slots: the slow webhook may take three of them, never the fourth.
    let dispatcher = Dispatcher::start("fairness", &["--concurrency", "4"], &[]);
    for (path, name) in [("slow", "s"), ("fast", "f")] {
        dispatcher
            .register(json!({"url": receivers.url(path), "subscriptions": ["ping"], "attributes": {"name": name}}))
            .await;
    }
    for _ in 0..24 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "s"}})).await;
    }
    for _ in 0..6 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "f"}})).await;
    }
    eventually("the fast webhook's six deliveries", WAIT, || receivers.at("fast").len() == 6).await;
    let slow_so_far = receivers.at("slow").len();
    assert!(slow_so_far <= 16, "the fast webhook waited for the slow one's backlog ({slow_so_far} of 24 done)");
    eventually("the slow webhook's backlog", WAIT, || receivers.at("slow").len() == 24).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_is_logged_in_the_span_of_its_own_delivery_alone() {
    let receivers = Receivers::start().await;
    let env = [("DISPATCHER_LOG", "info"), ("DISPATCHER_LOG_FORMAT", "json")];
    let dispatcher = Dispatcher::start("log-spans", &[], &env);
    for name in ["a", "b", "c", "d"] {
        let webhook =
            json!({"id": name, "url": receivers.url(name), "subscriptions": ["ping"], "attributes": {"name": name}});
        dispatcher.register(webhook).await;
    }
    for _ in 0..10 {
        assert_eq!(dispatcher.publish(json!({"name": "ping:all"})).await["deliveries"], 4);
    }
    eventually("40 deliveries", WAIT, || receivers.all().len() == 40).await;
    eventually("40 attempts logged", WAIT, || dispatcher.logs().matches(r#""message":"attempted""#).count() == 40)
        .await;
    // Forty deliveries ran concurrently on two threads: a span entered across an await would show up in the
    // other deliveries' lines too.
    let mut sent_ids: Vec<String> =
        receivers.all().iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    sent_ids.sort();
    assert_eq!(crate::support::attempt_log_ids(&dispatcher.logs()), sent_ids);
}
