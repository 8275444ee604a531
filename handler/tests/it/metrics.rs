//! `GET /metrics` after a known load: exactly the counts the load produced, in the Prometheus text format, behind
//! the API key.

use crate::support::{eventually_async, Behaviour, Dispatcher, Receivers};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const KEY: &str = "metrics-test-key";

type Labels<'a> = &'a [(&'a str, &'a str)];

/// The value of the sample of `name` whose labels include every one of `labels`; `None` when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_known_load_shows_exactly_its_counts() {
    let receivers = Receivers::start().await;
    receivers.behave("down", Behaviour { status: 503, ..Behaviour::default() });
    let dispatcher = Dispatcher::start("metrics", &["--retry-schedule", "50ms,50ms"], &[("DISPATCHER_API_KEY", KEY)]);
    let mut ids = Vec::new();
    for (name, disabled) in [("ok", false), ("down", false), ("off", true)] {
        let webhook = json!({"url": receivers.url(name), "subscriptions": ["ping"], "attributes": {"name": name},
                             "disabled": disabled});
        ids.push(dispatcher.register(webhook).await.0);
    }
    let (ok, down, off) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    for (name, times) in [("ok", 5), ("down", 2), ("off", 3)] {
        for _ in 0..times {
            dispatcher.publish(json!({"name": "ping", "payload": {"name": name}})).await;
        }
    }
    for invalid in [json!({"name": "ping", "payload": {"name": ""}}), json!({"name": "https://example.com/x"})] {
        assert_eq!(dispatcher.call("POST", "/events", Some(invalid)).await.0, 400);
    }

    let scrape = || async {
        let response = dispatcher.client.get(format!("{}/metrics", dispatcher.api.trim_end_matches("/api/v1")));
        let response = response.header("x-functions-key", KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    eventually_async("every delivery settled", WAIT, || async {
        let text = scrape().await;
        sample(&text, "dispatcher_deliveries_total", &[("outcome", "dead"), ("webhook", down)]) == Some(2.0)
            && sample(&text, "dispatcher_deliveries_total", &[("outcome", "delivered"), ("webhook", ok)]) == Some(5.0)
            && sample(&text, "dispatcher_deliveries_pending", &[]) == Some(0.0)
    })
    .await;
    let text = scrape().await;
    let expected: [(&str, Labels, f64); 11] = [
        ("dispatcher_events_accepted_total", &[("event", "ping")], 10.0),
        ("dispatcher_events_rejected_total", &[("event", "ping")], 1.0),
        ("dispatcher_events_rejected_total", &[("event", "unknown")], 1.0),
        ("dispatcher_deliveries_total", &[("outcome", "delivered"), ("webhook", ok)], 5.0),
        ("dispatcher_deliveries_total", &[("outcome", "retried"), ("webhook", down)], 4.0),
        ("dispatcher_deliveries_total", &[("outcome", "dead"), ("webhook", down)], 2.0),
        ("dispatcher_deliveries_total", &[("outcome", "skipped"), ("webhook", off)], 3.0),
        ("dispatcher_attempt_duration_seconds_count", &[("webhook", ok)], 5.0),
        ("dispatcher_attempt_duration_seconds_count", &[("webhook", down)], 6.0),
        ("dispatcher_webhooks", &[("state", "enabled")], 2.0),
        ("dispatcher_webhooks", &[("state", "disabled")], 1.0),
    ];
    for (name, labels, value) in expected {
        assert_eq!(sample(&text, name, labels), Some(value), "{name} {labels:?}\n{text}");
    }
    assert_eq!(sample(&text, "dispatcher_deliveries_total", &[("outcome", "delivered"), ("webhook", down)]), None);
    assert!(!text.contains(&receivers.base), "no URL is a label value");

    let anonymous = dispatcher.client.get(format!("{}/metrics", dispatcher.api.trim_end_matches("/api/v1")));
    assert_eq!(anonymous.send().await.unwrap().status(), 401, "behind the API key");
}
