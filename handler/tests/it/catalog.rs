//! The catalog file as operators use it: `handler catalog check` in a pipeline, `handler local` refusing a
//! broken file with the same words, and a file of an organisation's own events served and mapped.

use crate::support::{eventually, Dispatcher, Receivers};
use serde_json::json;
use std::process::Command;
use std::time::Duration;

fn handler(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_handler")).args(args).envs(env.iter().copied()).output().unwrap()
}

fn temp_file(name: &str, contents: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_broken_file_fails_the_check_and_the_start_with_every_problem() {
    let broken = temp_file(
        "broken-catalog.json",
        &json!({
            "events": [
                {"name": "ping", "audience": "public", "requiredAttributes": ["name"]},
                {"name": "orphan", "audience": "non-public"},
            ],
            "mappings": [{"from": "orphan", "to": "nope"}]
        })
        .to_string(),
    );
    let problems = [
        format!("{broken}: events[0].requiredAttributes[0]: name is not a required string field of the payload"),
        format!("{broken}: mappings[0].to: nope is not a public event of the catalog; public events: ping"),
    ];
    let checked = handler(&["catalog", "check", &broken], &[]);
    assert!(!checked.status.success());
    let check_text = String::from_utf8(checked.stderr).unwrap();
    for problem in &problems {
        assert!(check_text.contains(problem.as_str()), "{problem} in: {check_text}");
    }
    let data_dir = std::env::temp_dir().join(format!("{}-never-started", std::process::id()));
    let started = handler(
        &["local", "--port", "0", "--data-dir", data_dir.to_str().unwrap()],
        &[("DISPATCHER_CATALOG", &broken)],
    );
    assert!(!started.status.success(), "a broken catalog must keep the dispatcher from starting");
    let start_text = String::from_utf8(started.stderr).unwrap();
    for problem in &problems {
        assert!(
            start_text.contains(&format!("--catalog / DISPATCHER_CATALOG: {problem}")),
            "{problem} in: {start_text}"
        );
    }
    let missing = handler(&["catalog", "check", "/nonexistent/catalog.json"], &[]);
    assert!(String::from_utf8(missing.stderr)
        .unwrap()
        .contains("cannot read the catalog file /nonexistent/catalog.json"));
}

#[test]
fn the_built_in_file_passes_the_check() {
    let shown = handler(&["catalog", "show"], &[]);
    let copy = temp_file("io-catalog.json", std::str::from_utf8(&shown.stdout).unwrap());
    let checked = handler(&["catalog", "check", &copy], &[]);
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    assert_eq!(String::from_utf8(checked.stdout).unwrap(), format!("{copy}: 5 events (2 public), 3 mapping rules\n"));
}

/// An organisation's own events, given inline as an app setting would hold the file: served by the catalog
/// endpoint, accepted, mapped and delivered; the built-in events are unknown there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_catalog_is_served_mapped_and_delivered() {
    let catalog = json!({
        "events": [
            {"name": "account:created", "audience": "non-public", "payload": {"properties": {
                "accountId": {"type": "string", "minLength": 1}, "plan": {"type": "string", "enum": ["free", "pro"]},
                "seats": {"type": "integer"}}, "required": ["accountId", "plan"]}},
            {"name": "account:opened", "audience": "public", "requiredAttributes": ["plan"], "payload": {"properties": {
                "accountId": {"type": "string", "minLength": 1}, "plan": {"type": "string", "minLength": 1}},
                "required": ["accountId", "plan"]}},
        ],
        "mappings": [{"from": "account:created", "when": {"payload": {"plan": ["pro"]}}, "to": "account:opened",
                      "payload": {"accountId": "event.payload.accountId", "plan": "event.payload.plan"}}]
    })
    .to_string();
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("own-catalog", &[], &[("DISPATCHER_CATALOG", &catalog)]);
    let served = dispatcher.get("/events/catalog").await;
    let names: Vec<&str> = served["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["account:created", "account:opened"]);
    dispatcher
        .register(
            json!({"url": receivers.url("pro"), "subscriptions": ["account:opened"], "attributes": {"plan": "pro"}}),
        )
        .await;
    let (status, refused) =
        dispatcher.call("POST", "/events", Some(json!({"name": "ping", "payload": {"name": "x"}}))).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("known events: account:created, account:opened"), "{refused}");
    for plan in ["free", "pro"] {
        dispatcher.publish(json!({"name": "account:created", "payload": {"accountId": format!("a-{plan}"), "plan": plan, "seats": 3}})).await;
    }
    eventually("the pro account's delivery", Duration::from_secs(20), || receivers.arrived("pro") == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bodies: Vec<String> = receivers.at("pro").iter().map(|r| String::from_utf8(r.body.to_vec()).unwrap()).collect();
    assert_eq!(bodies, [r#"{"name":"account:opened","payload":{"accountId":"a-pro"}}"#]);
}

/// `handler package --catalog`: a broken file is refused before anything is written; a valid one ships as
/// `catalog.json` beside the handler, where the host starts it.
#[test]
fn the_function_app_package_ships_a_checked_catalog() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_handler")).unwrap();
    let glibc = dispatcher::runtime::azure::glibc::newest_required(&bytes)
        .unwrap()
        .map_or(dispatcher::runtime::azure::glibc::FLOOR, |n| n.version)
        .to_string();
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../function-app");
    let package = |out: &std::path::Path, catalog: &str| {
        handler(
            &[
                "package",
                "--out",
                out.to_str().unwrap(),
                "--source",
                source,
                "--max-glibc",
                &glibc,
                "--catalog",
                catalog,
            ],
            &[],
        )
    };
    let broken = temp_file("package-broken.json", r#"{"events": []}"#);
    let refused_out = std::env::temp_dir().join(format!("{}-package-refused", std::process::id()));
    let refused = package(&refused_out, &broken);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("events: [] is an array, expected a non-empty array"));
    assert!(!refused_out.exists(), "nothing is written for a broken catalog");

    let shown = handler(&["catalog", "show"], &[]);
    let good = temp_file("package-good.json", std::str::from_utf8(&shown.stdout).unwrap());
    let out = std::env::temp_dir().join(format!("{}-package-with-catalog", std::process::id()));
    let packaged = package(&out, &good);
    assert!(packaged.status.success(), "{}", String::from_utf8_lossy(&packaged.stderr));
    assert_eq!(std::fs::read(out.join("catalog.json")).unwrap(), shown.stdout);
    assert!(String::from_utf8_lossy(&packaged.stdout).contains("DISPATCHER_CATALOG=catalog.json"));
}

/// A payload field made by an expression: delivered when it runs, and when it fails the event is refused with
/// the reason (locally at once; recorded as rejected), nothing sent; the preview says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_payload_expression_rejects_its_event_with_the_reason() {
    let catalog = json!({
        "events": [
            {"name": "order:paid", "audience": "non-public", "payload": {"properties": {
                "amount": {"type": "integer"}, "currency": {"type": "string"}}, "required": ["amount", "currency"]}},
            {"name": "payment:received", "audience": "public", "payload": {"properties": {
                "label": {"type": "string", "minLength": 1}}, "required": ["label"]}},
        ],
        "mappings": [{"from": "order:paid", "to": "payment:received",
                      "payload": {"label": "if event.payload.amount > 0 { `${event.payload.amount / 100} ${event.payload.currency}` }"}}]
    })
    .to_string();
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("payload-expression", &[], &[("DISPATCHER_CATALOG", &catalog)]);
    dispatcher.register(json!({"url": receivers.url("paid"), "subscriptions": ["payment:received"]})).await;
    let paid = |amount: i64| json!({"name": "order:paid", "payload": {"amount": amount, "currency": "EUR"}});
    assert_eq!(dispatcher.publish(paid(1200)).await["deliveries"], 1);
    eventually("the delivery", Duration::from_secs(20), || receivers.at("paid").len() == 1).await;
    assert_eq!(receivers.at("paid")[0].json()["payload"], json!({"label": "12 EUR"}));

    let (status, preview) = dispatcher.call("POST", "/events/preview", Some(paid(0))).await;
    assert_eq!(status, 200, "{preview}");
    assert!(preview["failed"].as_str().unwrap().contains("payload.label made nothing"), "{preview}");
    let (status, refused) = dispatcher.call("POST", "/events", Some(paid(0))).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("made nothing, but payment:received.label is required"), "{refused}");
    let rejected = dispatcher.get("/events/rejected").await;
    assert_eq!(rejected["items"][0]["problems"][0]["path"], "mappings", "{rejected}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receivers.arrived("paid"), 1, "nothing sent for the refused event");
}
