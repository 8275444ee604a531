//! `handler serve` on a Cosmos DB that throttles (the local server answering 429 with `x-ms-retry-after-ms`,
//! as Cosmos DB does when its request units run out): invocations wait it out as asked, saying so in the log,
//! and a burst of events is delivered once each after it.

use crate::functions_serve::{invoke, start_serve, with_one_webhook};
use dispatcher::ports::DeliveryLog;
use dispatcher_core::model::Status;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BURST: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_during_ten_seconds_of_throttling_is_delivered_once_each_after_it() {
    let (cosmos, store, receivers) = with_one_webhook("throttled").await;
    let log_file = std::env::temp_dir().join(format!("cosmos-throttling-{}.log", std::process::id()));
    let log = Stdio::from(std::fs::File::create(&log_file).unwrap());
    let settings = [("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")];
    let (_handler, client, base) = start_serve(&cosmos, "throttled", &settings, log).await;

    let throttle = format!("{}__throttle", cosmos.endpoint);
    let started = Instant::now();
    client.post(format!("{throttle}?ms=10000&retryAfterMs=500")).send().await.unwrap();
    let events = (0..BURST).map(|i| {
        let ping = json!({"name": "ping", "payload": {"name": "wh1"}}).to_string();
        let invocation = json!({"Data": {"msg": ping}, "Metadata": {"MessageId": format!("\"burst-{i}\"")}});
        invoke(&client, &base, "OnIncomingEvent", invocation.to_string().into_bytes())
    });
    let mut jobs = Vec::new();
    for (status, answer) in futures_util::future::join_all(events).await {
        assert_eq!(status, 200, "waited out, not failed: {answer}");
        jobs.extend(answer["Outputs"]["deliveries"].as_array().cloned().unwrap_or_default());
    }
    assert!(started.elapsed() >= Duration::from_secs(9), "answered while throttled: {:?}", started.elapsed());
    let throttled: Value = client.get(&throttle).send().await.unwrap().json().await.unwrap();
    assert!(throttled["throttled"].as_u64().unwrap() >= BURST as u64, "{throttled}");
    assert_eq!(jobs.len(), BURST);

    for (i, job) in jobs.iter().enumerate() {
        let invocation =
            json!({"Data": {"msg": job}, "Metadata": {"MessageId": format!("\"job-{i}\""), "DeliveryCount": "1"}});
        let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
        assert_eq!(status, 200, "{answer}");
    }
    let ids: HashSet<String> =
        receivers.at("wh1").iter().filter_map(|r| r.header("webhook-id").map(str::to_owned)).collect();
    assert_eq!((receivers.at("wh1").len(), ids.len()), (BURST, BURST), "each event delivered once");
    let (logged, _) = store.list_deliveries(&"wh1".into(), None, 50, None).await.unwrap();
    assert_eq!(logged.len(), BURST, "one log entry per delivery");
    assert!(logged.iter().all(|e| e.status == Status::Succeeded && e.attempts.len() == 1));

    let logs = std::fs::read_to_string(&log_file).unwrap();
    let waits = logs.lines().filter(|l| l.contains("Cosmos DB throttles")).count();
    assert!(waits >= BURST, "the waits are logged: {waits} lines\n{logs}");
    assert!(logs.contains("wait_ms=500"), "as long as the service asks: {logs}");
    let _ = std::fs::remove_file(&log_file);
}
