//! The management API of `handler local`, over HTTP against the real binary.

use crate::support::{eventually, eventually_async, Behaviour, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const API_KEY: &str = "local-api-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_required_when_set_and_never_logged() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("api-key", &[], &[("DISPATCHER_API_KEY", API_KEY), ("DISPATCHER_LOG", "debug")]);
    for request in [
        dispatcher.client.get(format!("{}/info", dispatcher.api)),
        dispatcher.client.get(format!("{}/info", dispatcher.api)).header("x-functions-key", "wrong"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let by_query = dispatcher.client.get(format!("{}/info?code={API_KEY}", dispatcher.api)).send().await.unwrap();
    assert_eq!(by_query.status(), 200);
    // Traffic with every kind of secret, then none of them in the logs.
    let (id, secret) = dispatcher
        .register(json!({"url": receivers.url("hook"), "subscriptions": ["ping"], "attributes": {"name": "n"},
            "headers": {"x-api-key": "header-s3cret-value"}, "auth": {"type": "basic", "username": "u", "password": "basic-s3cret-pw"}}))
        .await;
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "n"}})).await;
    dispatcher.call("POST", "/events", Some(json!({"name": "ping", "payload": {"name": ""}}))).await;
    eventually("the delivery", WAIT, || receivers.at("hook").len() == 1).await;
    let received = &receivers.at("hook")[0];
    assert_eq!(received.header("authorization"), Some("Basic dTpiYXNpYy1zM2NyZXQtcHc="));
    assert_eq!(received.header("x-api-key"), Some("header-s3cret-value"));
    let shown = dispatcher.get(&format!("/webhooks/{id}")).await;
    assert_eq!(shown["auth"], json!({"type": "basic", "username": "u"}), "credentials are not shown");
    assert!(shown.get("secret").is_none());
    // The attempt is logged once the receiver's answer is read, which may be after the receiver recorded it.
    eventually("the attempt in the logs", WAIT, || dispatcher.logs().contains("attempted")).await;
    let logs = dispatcher.logs();
    for secret in [API_KEY, secret.as_str(), "header-s3cret-value", "basic-s3cret-pw", "dTpiYXNpYy1zM2NyZXQtcHc="] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_managed_and_rotated_secrets_both_sign_during_the_overlap() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("manage", &[], &[]);
    let (id, first_secret) = dispatcher
        .register(json!({"url": receivers.url("a"), "subscriptions": "ping", "attributes": {"name": "a"}, "description": "first"}))
        .await;
    assert!(first_secret.starts_with("whsec_"));
    assert_eq!(dispatcher.get(&format!("/webhooks/{id}/secret")).await["secret"], json!(first_secret));
    let (status, _) = dispatcher
        .call("POST", "/webhooks", Some(json!({"id": id, "url": receivers.url("a"), "subscriptions": []})))
        .await;
    assert_eq!(status, 409, "ids are unique");

    let (status, patched) = dispatcher
        .call("PATCH", &format!("/webhooks/{id}"), Some(json!({"description": null, "headers": {"x-k": "v"}})))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched.get("description"), &patched["headers"]), (None, &json!({"x-k": "v"})));
    let (status, put) = dispatcher
        .call(
            "PUT",
            &format!("/webhooks/{id}"),
            Some(json!({"url": receivers.url("b"), "subscriptions": ["ping"], "attributes": {"name": "a"}})),
        )
        .await;
    assert_eq!((status, &put["url"], &put["headers"]), (200, &json!(receivers.url("b")), &json!({})));

    let rotated = dispatcher.call("POST", &format!("/webhooks/{id}/rotate-secret"), None).await.1;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated["previousSecret"], json!(first_secret));
    assert_ne!(new_secret, first_secret);
    let (status, queued) = dispatcher.call("POST", &format!("/webhooks/{id}/ping"), None).await;
    assert_eq!(status, 202, "{queued}");
    eventually("the ping", WAIT, || receivers.at("b").len() == 1).await;
    let ping = &receivers.at("b")[0];
    assert_eq!(ping.json(), json!({"name": "ping", "payload": {}}));
    assert_eq!(ping.header("webhook-id"), queued["id"].as_str());
    assert_eq!(ping.header("webhook-signature").unwrap().split(' ').count(), 2);
    assert!(ping.verify(&new_secret) && ping.verify(&first_secret), "both secrets verify during the overlap");

    let list = dispatcher.get("/webhooks").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = dispatcher.call("DELETE", &format!("/webhooks/{id}"), None).await;
    assert_eq!(status, 204);
    assert_eq!(dispatcher.call("GET", &format!("/webhooks/{id}"), None).await.0, 404);
    assert_eq!(dispatcher.call("DELETE", &format!("/webhooks/{id}"), None).await.0, 404);
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "a"}})).await;
    assert_eq!(
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "a"}})).await["deliveries"],
        json!(0),
        "deleted webhooks get nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempt_log_pages_newest_first_and_a_retry_keeps_the_webhook_id() {
    let receivers = Receivers::start().await;
    receivers.behave("picky", Behaviour { status: 422, ..Behaviour::default() });
    let dispatcher = Dispatcher::start("log", &[], &[]);
    let (id, _) = dispatcher
        .register(json!({"url": receivers.url("picky"), "subscriptions": ["ping"], "attributes": {"name": "p"}}))
        .await;
    for _ in 0..5 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "p"}})).await;
    }
    eventually_async("five dead deliveries", WAIT, || async {
        let page = dispatcher.get(&format!("/webhooks/{id}/deliveries?limit=50")).await;
        page["items"].as_array().unwrap().iter().filter(|d| d["status"] == "dead").count() == 5
    })
    .await;
    let first = dispatcher.get(&format!("/webhooks/{id}/deliveries?limit=2")).await;
    let second = dispatcher
        .get(&format!("/webhooks/{id}/deliveries?limit=2&cursor={}", first["nextCursor"].as_str().unwrap()))
        .await;
    let third = dispatcher
        .get(&format!("/webhooks/{id}/deliveries?limit=2&cursor={}", second["nextCursor"].as_str().unwrap()))
        .await;
    assert!(third.get("nextCursor").is_none());
    let (status, problem) = dispatcher.call("GET", &format!("/webhooks/{id}/deliveries?cursor=abc"), None).await;
    assert_eq!(
        (status, problem["detail"].as_str()),
        (400, Some(r#"cursor: "abc" is not a cursor: the nextCursor of a previous page"#))
    );
    let created: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap().iter().map(|d| d["createdAt"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(created.len(), 5);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    let dead = &first["items"][0];
    assert_eq!(dead["attempts"][0]["statusCode"], json!(422));
    assert_eq!(dead["deadReason"], "HTTP 422 is not retried");

    receivers.behave("picky", Behaviour::default());
    let delivery_id = dead["id"].as_str().unwrap();
    let (status, _) = dispatcher.call("POST", &format!("/deliveries/{delivery_id}/retry"), None).await;
    assert_eq!(status, 202);
    eventually_async("the retried delivery succeeds", WAIT, || async {
        dispatcher.get(&format!("/deliveries/{delivery_id}")).await["status"] == "succeeded"
    })
    .await;
    let resent = receivers.at("picky").into_iter().last().unwrap();
    assert_eq!(resent.header("webhook-id"), Some(delivery_id));
    assert_eq!(dispatcher.get(&format!("/deliveries/{delivery_id}")).await["attempts"].as_array().unwrap().len(), 2);

    // Filtered by status: the one retried is the only one succeeded, the four others dead.
    let ids = |page: Value| -> Vec<String> {
        page["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
    };
    let path = |status: &str| format!("/webhooks/{id}/deliveries?status={status}");
    assert_eq!(ids(dispatcher.get(&path("succeeded")).await), [delivery_id]);
    assert_eq!(ids(dispatcher.get(&path("dead")).await).len(), 4);
    let (status, problem) = dispatcher.call("GET", &format!("/webhooks/{id}/deliveries?status=lost"), None).await;
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("lost"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_webhook() {
    let receivers = Receivers::start().await;
    receivers.behave("gone", Behaviour { status: 410, ..Behaviour::default() });
    let dispatcher = Dispatcher::start("gone", &[], &[]);
    let (id, _) = dispatcher
        .register(json!({"url": receivers.url("gone"), "subscriptions": ["ping"], "attributes": {"name": "g"}}))
        .await;
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "g"}})).await;
    eventually_async("the webhook is disabled", WAIT, || async {
        dispatcher.get(&format!("/webhooks/{id}")).await["disabled"] == json!(true)
    })
    .await;
    let webhook = dispatcher.get(&format!("/webhooks/{id}")).await;
    assert!(webhook["disabledReason"].as_str().unwrap().contains("410"));
    assert_eq!(dispatcher.publish(json!({"name": "ping", "payload": {"name": "g"}})).await["deliveries"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_when_not_allowed() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("ssrf", &[], &[("DISPATCHER_ALLOW_PRIVATE_TARGETS", "false")]);
    let localhost = receivers.url("inside").replace("127.0.0.1", "localhost");
    let mut ids = Vec::new();
    for (name, url) in [("literal", receivers.url("inside")), ("named", localhost)] {
        ids.push(
            dispatcher.register(json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": name}})).await.0,
        );
        dispatcher.publish(json!({"name": "ping", "payload": {"name": name}})).await;
    }
    for id in ids {
        eventually_async("a dead delivery", WAIT, || async {
            dispatcher.get(&format!("/webhooks/{id}/deliveries")).await["items"][0]["status"] == "dead"
        })
        .await;
        let delivery = &dispatcher.get(&format!("/webhooks/{id}/deliveries")).await["items"][0];
        let reason = delivery["deadReason"].as_str().unwrap();
        assert!(reason.starts_with("refused:") && reason.contains("a loopback address"), "{reason}");
        assert_eq!(delivery["attempts"].as_array().unwrap().len(), 1, "a refused target is not retried");
    }
    assert!(receivers.all().is_empty(), "nothing reached the private address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhooks_file_is_upserted_and_sigterm_exits_cleanly() {
    let receivers = Receivers::start().await;
    let dir = crate::support::temp_dir("file");
    let file = dir.join("webhooks.json");
    let config = |headers: Value| {
        json!([
            {"url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"}},
            {"url": receivers.url("wh2"), "subscriptions": "ping,service:subscribed", "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}, "headers": headers},
        ])
    };
    std::fs::write(&file, config(json!({})).to_string()).unwrap();
    let mut dispatcher = Dispatcher::start("file-run", &["--webhooks", file.to_str().unwrap()], &[]);
    let ids: Vec<Value> =
        dispatcher.get("/webhooks").await.as_array().unwrap().iter().map(|w| w["id"].clone()).collect();
    assert_eq!(ids.len(), 2);
    std::fs::write(&file, config(json!({"x-v": "2"})).to_string()).unwrap();
    dispatcher.restart();
    let again = dispatcher.get("/webhooks").await;
    assert_eq!(
        again.as_array().unwrap().iter().map(|w| w["id"].clone()).collect::<Vec<_>>(),
        ids,
        "same ids, no duplicates"
    );
    assert_eq!(again[1]["headers"], json!({"x-v": "2"}), "changes are applied");
    dispatcher.publish(json!({"name": "ping:all"})).await;
    eventually("both pings", WAIT, || receivers.all().len() == 2).await;
    let status = dispatcher.terminate();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");

    std::fs::write(&file, r#"[{"url": "nope", "subscriptions": ["ping"]}]"#).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args([
            "local",
            "--port",
            "0",
            "--data-dir",
            dir.join("other").to_str().unwrap(),
            "--webhooks",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("[0]: url: \"nope\" is not a valid URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_its_catalog_and_openapi_document() {
    let dispatcher = Dispatcher::start("docs", &[], &[]);
    assert_eq!(dispatcher.get("/events/catalog").await, dispatcher_core::events::docs::catalog());
    let openapi = dispatcher.get("/openapi.json").await;
    assert_eq!(openapi, dispatcher::http::openapi_json());
    assert!(openapi["paths"]["/api/v1/webhooks/{id}"]["patch"].is_object());
    let (status, problem) = dispatcher.call("GET", "/nothing-here", None).await;
    assert_eq!((status, problem["status"].clone()), (404, json!(404)));
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused_and_bad_settings_are_all_reported() {
    let dispatcher = Dispatcher::start("lock", &[], &[]);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["local", "--port", "0", "--data-dir", dispatcher.data_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is in use by another handler process"));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["local", "--port", "x", "--concurrency", "0"])
        .env("DISPATCHER_API_KEY", "tiny-key")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--port / DISPATCHER_PORT")
            && stderr.contains("--concurrency")
            && stderr.contains("DISPATCHER_API_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("tiny-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_shows_where_an_event_would_go_and_what_each_webhook_would_get_and_sends_nothing() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("preview", &[], &[]);
    let service = "aServiceId12345";
    let register = |name: &str, extra: Value| {
        let mut body = json!({"url": receivers.url(name), "subscriptions": ["service:subscribed"],
                              "attributes": {"serviceId": service}, "id": name});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        dispatcher.register(body)
    };
    register("plain", json!({})).await;
    register("filtered-out", json!({"filter": {"payload": {"fiscalCode": [{"prefix": "ZZZ"}]}}})).await;
    register("off", json!({"disabled": true})).await;
    let event =
        json!({"name": "service:subscribed", "payload": {"serviceId": service, "fiscalCode": "AAABBB00A00A000B"}});

    let (status, preview) = dispatcher.call("POST", "/events/preview", Some(event)).await;
    assert_eq!(status, 200, "{preview}");
    let body = json!({"name": "service:subscribed", "payload": {"fiscalCode": "AAABBB00A00A000B"}});
    assert_eq!(
        preview,
        json!({"event": "service:subscribed",
               "deliveries": [{"webhookId": "plain", "event": "service:subscribed", "body": body}],
               "unsent": [],
               "skipped": [{"webhookId": "off", "event": "service:subscribed", "body": body}]})
    );
    let (status, invalid) =
        dispatcher.call("POST", "/events/preview", Some(json!({"name": "ping", "payload": 1}))).await;
    assert_eq!(status, 400, "{invalid}");
    assert_eq!(invalid["problems"][0]["path"], "payload", "{invalid}");

    // Nothing was sent, logged or recorded.
    let info = dispatcher.get("/info").await;
    assert_eq!((&info["counters"]["accepted"], &info["counters"]["rejected"]), (&json!(0), &json!(0)), "{info}");
    assert_eq!(dispatcher.get("/webhooks/plain/deliveries").await["items"], json!([]));
    assert_eq!(dispatcher.get("/events/rejected").await["items"], json!([]));
    assert!(receivers.at("plain").is_empty());
}

/// A merge patch naming a field that does not exist is refused, even as null (which would remove nothing): a
/// misspelt field is never silently ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_naming_an_unknown_field_is_refused_even_as_null() {
    let dispatcher = Dispatcher::start("patch-unknown", &[], &[]);
    let (id, _) = dispatcher
        .register(json!({"url": "https://example.com/hook", "subscriptions": ["ping"], "attributes": {"name": "a"}}))
        .await;
    for patch in [json!({"transfrom": null}), json!({"": null, "description": "x"})] {
        let (status, refused) = dispatcher.call("PATCH", &format!("/webhooks/{id}"), Some(patch.clone())).await;
        assert_eq!(status, 400, "{patch}: {refused}");
        assert!(refused["problems"][0]["message"].as_str().unwrap().starts_with("is not a webhook field"), "{refused}");
    }
    assert_eq!(dispatcher.get(&format!("/webhooks/{id}")).await.get("description"), None, "nothing was changed");
}
