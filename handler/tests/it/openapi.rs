//! The OpenAPI document, checked by an independent validator: the Python OpenAPI tools
//! (`__integrations__/openapi/check.py`, installed here in a virtual environment under `target/`), not the Rust
//! crates that generate it. The committed document and the one `handler local` serves must be valid OpenAPI 3.1,
//! and real answers of the API, errors first, must match the responses it declares.

use crate::support::{Dispatcher, Receivers};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The validator's Python, its packages installed (once per target dir) from the pinned requirements.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-venv");
    testkit::python::venv(&venv, "openapi/requirements.txt", "openapi_spec_validator, openapi_schema_validator")
}

/// Runs `check.py` with `args`; its report, and whether it found nothing.
fn check(args: &[&Path]) -> (bool, String) {
    let output =
        Command::new(python()).arg(repository().join("__integrations__/openapi/check.py")).args(args).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), report)
}

#[test]
fn the_committed_document_is_valid_openapi_3_1() {
    let (valid, report) = check(&[Path::new("document"), &repository().join("schemas/openapi.json")]);
    assert!(valid, "{report}");
    assert!(report.ends_with("0 problems\n"), "{report}");
}

#[test]
fn the_validator_finds_what_is_wrong() {
    // A document with a path parameter no operation declares: what the validator rejected before.
    let dir = crate::support::temp_dir("openapi-broken");
    let broken = dir.join("broken.json");
    let document = json!({"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
        "paths": {"/webhooks/{id}": {"get": {"responses": {"200": {"description": "ok"}}}}}});
    std::fs::write(&broken, document.to_string()).unwrap();
    let (valid, report) = check(&[Path::new("document"), &broken]);
    assert!(!valid && report.contains("Path parameter 'id'"), "{report}");
}

/// One answer of the API, as `check.py answers` reads it.
fn answer(method: &str, path: &str, status: u16, response: &(u16, Value)) -> Value {
    assert_eq!(response.0, status, "{method} {path}: {}", response.1);
    let content_type = if status < 300 { "application/json" } else { "application/problem+json" };
    json!({"method": method, "path": path, "status": status, "contentType": content_type, "body": response.1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_valid_and_real_answers_match_it() {
    let receivers = Receivers::start().await;
    let key = "openapi-test-key-0123456789";
    let dispatcher = Dispatcher::start("openapi", &[], &[("DISPATCHER_API_KEY", key)]);
    let served = dispatcher.get("/openapi.json").await;
    assert_eq!(served, dispatcher::http::openapi_json(), "served as generated");

    let mut answers = Vec::new();
    let unauthorized = dispatcher.client.get(format!("{}/info", dispatcher.api)).send().await.unwrap();
    let status = unauthorized.status().as_u16();
    answers.push(answer("GET", "/api/v1/info", 401, &(status, unauthorized.json().await.unwrap())));
    answers.push(answer("GET", "/api/v1/info", 200, &dispatcher.call("GET", "/info", None).await));
    let webhook =
        json!({"id": "wh1", "url": receivers.url("wh1"), "subscriptions": ["ping"], "attributes": {"name": "wh1"}});
    answers.push(answer(
        "POST",
        "/api/v1/webhooks",
        201,
        &dispatcher.call("POST", "/webhooks", Some(webhook.clone())).await,
    ));
    answers.push(answer("POST", "/api/v1/webhooks", 409, &dispatcher.call("POST", "/webhooks", Some(webhook)).await));
    answers.push(answer("POST", "/api/v1/webhooks", 400, &dispatcher.call("POST", "/webhooks", Some(json!({}))).await));
    answers.push(answer("GET", "/api/v1/webhooks", 200, &dispatcher.call("GET", "/webhooks", None).await));
    answers.push(answer("GET", "/api/v1/webhooks/{id}", 404, &dispatcher.call("GET", "/webhooks/nope", None).await));
    let patch = Some(json!({"description": "patched"}));
    answers.push(answer(
        "PATCH",
        "/api/v1/webhooks/{id}",
        200,
        &dispatcher.call("PATCH", "/webhooks/wh1", patch).await,
    ));
    answers.push(answer(
        "GET",
        "/api/v1/webhooks/{id}/secret",
        200,
        &dispatcher.call("GET", "/webhooks/wh1/secret", None).await,
    ));
    let ping = dispatcher.call("POST", "/webhooks/wh1/ping", None).await;
    answers.push(answer("POST", "/api/v1/webhooks/{id}/ping", 202, &ping));
    let event = Some(json!({"name": "ping", "payload": {"name": "wh1"}}));
    answers.push(answer("POST", "/api/v1/events", 202, &dispatcher.call("POST", "/events", event).await));
    let invalid = Some(json!({"name": "ping", "payload": {"name": ""}}));
    answers.push(answer("POST", "/api/v1/events", 400, &dispatcher.call("POST", "/events", invalid).await));
    let plain = dispatcher.client.post(format!("{}/events", dispatcher.api)).header("x-functions-key", key).body("{}");
    let plain = plain.header("content-type", "text/plain").send().await.unwrap();
    let status = plain.status().as_u16();
    answers.push(answer("POST", "/api/v1/events", 415, &(status, plain.json().await.unwrap())));
    let big = json!({"name": "ping", "payload": {"name": "x".repeat(300 * 1024)}});
    answers.push(answer("POST", "/api/v1/events", 413, &dispatcher.call("POST", "/events", Some(big)).await));
    answers.push(answer(
        "GET",
        "/api/v1/events/rejected",
        200,
        &dispatcher.call("GET", "/events/rejected", None).await,
    ));
    let bad_cursor = dispatcher.call("GET", "/webhooks/wh1/deliveries?cursor=abc", None).await;
    answers.push(answer("GET", "/api/v1/webhooks/{id}/deliveries", 400, &bad_cursor));
    let delivery = format!("/deliveries/{}", ping.1["id"].as_str().unwrap());
    answers.push(answer("GET", "/api/v1/deliveries/{id}", 200, &dispatcher.call("GET", &delivery, None).await));
    answers.push(answer(
        "GET",
        "/api/v1/deliveries/{id}",
        404,
        &dispatcher.call("GET", "/deliveries/dlv_nope", None).await,
    ));

    let dir = crate::support::temp_dir("openapi-answers");
    let (document, answered) = (dir.join("served.json"), dir.join("answers.json"));
    std::fs::write(&document, served.to_string()).unwrap();
    std::fs::write(&answered, Value::Array(answers).to_string()).unwrap();
    let (valid, report) = check(&[Path::new("document"), &document]);
    assert!(valid, "{report}");
    let (matched, report) = check(&[Path::new("answers"), &document, &answered]);
    assert!(matched, "{report}");
}
