//! Stopping the handler with SIGTERM: no new work is taken, the deliveries in flight finish and are recorded
//! within the grace period, and nothing is sent twice. `handler local` also ends a pruning pass at a batch;
//! `handler serve` answers the invocation under way before it exits (the host would deliver its message again).

use crate::functions_serve::{fixture, invoke, start_serve, with_one_webhook};
use crate::support::{eventually, Behaviour, Dispatcher, Receivers};
use dispatcher::adapters::sqlite::SqliteStore;
use dispatcher::ports::DeliveryLog;
use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::model::Unsent;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn webhook_ids(receivers: &Receivers, path: &str) -> Vec<String> {
    receivers.at(path).iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_the_deliveries_in_flight_and_a_restart_sends_none_again() {
    let receivers = Receivers::start().await;
    receivers.behave("slow", Behaviour { delay: Duration::from_millis(1500), ..Behaviour::default() });
    let mut dispatcher = Dispatcher::start("drain", &["--shutdown-grace", "10s"], &[]);
    let webhook = json!({"url": receivers.url("slow"), "subscriptions": ["ping"], "attributes": {"name": "slow"}});
    let (id, _) = dispatcher.register(webhook).await;
    for _ in 0..4 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "slow"}})).await;
    }
    eventually("four requests in flight", WAIT, || receivers.arrived("slow") == 4).await;
    assert!(receivers.at("slow").is_empty(), "none answered yet: the signal lands while all four are in flight");

    let status = dispatcher.terminate();
    assert!(status.success(), "{status:?}; log:\n{}", dispatcher.logs());
    assert_eq!(receivers.at("slow").len(), 4, "each answered before the process exited");

    dispatcher.restart();
    let deliveries = dispatcher.get(&format!("/webhooks/{id}/deliveries")).await;
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "{deliveries}");
    for item in items {
        assert_eq!(item["status"], "succeeded", "{item}");
        assert_eq!(item["attempts"].as_array().map(Vec::len), Some(1), "{item}");
    }
    // A delivery after the restart goes through the same workers: had any of the four been left due, it
    // would be sent again beside it.
    receivers.behave("slow", Behaviour::default());
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "slow"}})).await;
    eventually("the delivery published after the restart", WAIT, || receivers.at("slow").len() >= 5).await;
    let ids = webhook_ids(&receivers, "slow");
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 5, "each webhook-id once: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_still_in_flight_after_the_grace_period_are_counted_and_made_again_after_a_restart() {
    let receivers = Receivers::start().await;
    receivers.behave("stuck", Behaviour { delay: Duration::from_secs(30), ..Behaviour::default() });
    let args = ["--shutdown-grace", "200ms", "--request-timeout", "2s"];
    let mut dispatcher = Dispatcher::start("grace", &args, &[]);
    let webhook = json!({"url": receivers.url("stuck"), "subscriptions": ["ping"], "attributes": {"name": "stuck"}});
    dispatcher.register(webhook).await;
    for _ in 0..2 {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": "stuck"}})).await;
    }
    eventually("two requests in flight", WAIT, || receivers.arrived("stuck") == 2).await;
    let started = std::time::Instant::now();
    assert!(dispatcher.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(2), "the grace period bounds the wait: {:?}", started.elapsed());
    let logs = dispatcher.logs();
    assert!(
        logs.lines().any(|l| l.contains("after the grace period") && l.contains("unfinished=2")),
        "the deliveries left are logged with their count:\n{logs}"
    );

    // Their leases are released at the next start: each is made again, with its webhook-id.
    assert!(receivers.at("stuck").is_empty(), "neither was answered before the exit");
    receivers.behave("stuck", Behaviour::default());
    dispatcher.restart();
    eventually("both made again", WAIT, || receivers.at("stuck").len() == 2).await;
    assert_eq!(receivers.arrived("stuck"), 4, "two attempts cut short, two made again");
    assert_eq!(webhook_ids(&receivers, "stuck").iter().collect::<BTreeSet<_>>().len(), 2);
}

/// `count` skipped deliveries created at `at_ms`, written straight into the data dir's store.
async fn old_deliveries(data_dir: &std::path::Path, count: usize, at_ms: i64) {
    let store = SqliteStore::open(data_dir, at_ms).unwrap();
    let deliveries: Vec<_> = (0..count)
        .map(|n| {
            let source = Source { id: format!("old-{n}"), correlation_id: None, traceparent: None };
            direct(&source, &"gone".into(), "ping", format!(r#"{{"name":"ping","payload":{{"n":{n}}}}}"#))
        })
        .collect();
    for chunk in deliveries.chunks(5_000) {
        let unsent: Vec<Unsent> = chunk.iter().cloned().map(Unsent::skipped).collect();
        store.log_unsent(&unsent, at_ms).await.unwrap();
    }
}

fn pruned(line: &str) -> Option<u64> {
    let line: Value = serde_json::from_str(line).ok()?;
    (line["fields"]["message"] == "pruned").then(|| line["fields"]["deliveries"].as_u64()).flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_pruning_pass_ends_it_at_a_batch_and_the_next_start_prunes_the_rest() {
    const OLD: usize = 200_000;
    let dir = crate::support::temp_dir("prune-drain");
    let data_dir = dir.join("data");
    let a_year_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - 365 * 86_400_000;
    old_deliveries(&data_dir, OLD, a_year_ago).await;
    let env = [("DISPATCHER_LOG", "dispatcher=debug,info"), ("DISPATCHER_LOG_FORMAT", "json")];
    let mut dispatcher = Dispatcher::start_on(&data_dir, &dir.join("handler.log"), &[], &env);
    eventually("the pruning pass to start", WAIT, || dispatcher.logs().contains("pruning the log")).await;
    assert!(dispatcher.terminate().success(), "{}", dispatcher.logs());

    let logs = dispatcher.logs();
    let order: Vec<&str> = logs
        .lines()
        .filter_map(|l| match () {
            _ if l.contains("shutting down") => Some("shutting down"),
            _ if pruned(l).is_some() => Some("pruned"),
            _ if l.contains(r#""stopped""#) => Some("stopped"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["shutting down", "pruned", "stopped"], "the pass is awaited:\n{logs}");
    let first = logs.lines().find_map(pruned).unwrap();
    assert!(first > 0 && first < OLD as u64, "the pass ended early, at a batch: {first} of {OLD}");

    dispatcher.restart();
    eventually("the next pass", WAIT, || dispatcher.logs().lines().filter_map(pruned).count() == 2).await;
    let second = dispatcher.logs().lines().filter_map(pruned).nth(1).unwrap();
    assert_eq!(first + second, OLD as u64, "nothing is pruned twice or left behind");
}

/// `handler serve` (stderr to `log`, when given) making the attempt of a DeliverWebhook invocation, to a
/// receiver that answers after `delay`: it is in flight when this returns.
struct InFlight {
    handler: crate::functions_serve::Handler,
    store: dispatcher::adapters::cosmos::CosmosStore,
    receivers: Receivers,
    invocation: tokio::task::JoinHandle<(u16, Value)>,
    _cosmos: crate::support::cosmos::CosmosServer,
}

/// The delivery of the invocation fixture `deliver-webhook-base64.json`.
const INVOKED: &str = "dlv_e02cdc1c690f6a5eb73152a53a985ab1";

async fn serve_in_flight(
    name: &str,
    delay: Duration,
    settings: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> InFlight {
    let (cosmos, store, receivers) = with_one_webhook(name).await;
    receivers.behave("wh1", Behaviour { delay, ..Behaviour::default() });
    let mut settings = settings.to_vec();
    settings.push(("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true"));
    let stderr = log.map_or_else(std::process::Stdio::null, |path| std::fs::File::create(path).unwrap().into());
    let (handler, client, base) = start_serve(&cosmos, name, &settings, stderr).await;
    let invocation =
        tokio::spawn(
            async move { invoke(&client, &base, "DeliverWebhook", fixture("deliver-webhook-base64.json")).await },
        );
    eventually("the attempt in flight", WAIT, || receivers.arrived("wh1") == 1).await;
    InFlight { handler, store, receivers, invocation, _cosmos: cosmos }
}

impl InFlight {
    fn terminate(&self) {
        let pid = self.handler.0.id().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    async fn logged(&self) -> Option<dispatcher_core::model::LogEntry> {
        self.store.get_delivery(dispatcher_core::model::DeliveryId::parse(INVOKED).unwrap()).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_the_invocation_under_way_before_it_exits() {
    let mut serve = serve_in_flight("drain", Duration::from_millis(1500), &[], None).await;
    serve.terminate();
    let (status, answer) = (&mut serve.invocation).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Logs"][0], format!("delivery {INVOKED} attempt 1: HTTP 200, delivered"));
    assert!(serve.handler.0.wait().unwrap().success());
    let logged = serve.logged().await.unwrap();
    assert_eq!((logged.status, logged.attempts.len()), (dispatcher_core::model::Status::Succeeded, 1));
    assert_eq!(serve.receivers.at("wh1").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_finishes_an_invocation_whose_connection_the_host_closed() {
    let mut serve = serve_in_flight("closed", Duration::from_millis(1000), &[], None).await;
    // The host goes away mid-invocation: its connection closes before the answer.
    serve.invocation.abort();
    let recorded = || async { serve.logged().await.is_some_and(|entry| entry.attempts.len() == 1) };
    crate::support::eventually_async("the attempt recorded all the same", WAIT, recorded).await;
    assert_eq!(serve.logged().await.unwrap().status, dispatcher_core::model::Status::Succeeded);
    assert_eq!(serve.receivers.at("wh1").len(), 1);
    serve.terminate();
    assert!(serve.handler.0.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_within_the_grace_period_with_an_invocation_still_stuck_and_says_so() {
    let log = crate::support::temp_dir("stuck-log").join("handler.log");
    let settings = [("DISPATCHER_REQUEST_TIMEOUT", "60s"), ("DISPATCHER_SHUTDOWN_GRACE", "1s")];
    let mut serve = serve_in_flight("stuck", Duration::from_secs(30), &settings, Some(&log)).await;
    let signalled = std::time::Instant::now();
    serve.terminate();
    assert!(serve.handler.0.wait().unwrap().success());
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM, with a grace of 1 s");
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("unfinished=1"), "the invocation left unfinished is counted: {logs}");
    serve.invocation.abort();
}
