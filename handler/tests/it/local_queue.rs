//! The SQLite store as the local queue: a delivery logged by `handler local` is leased to its queue at once
//! (`SqliteStore::claiming_new`), so that handing it to the workers in memory needs no second write. A worker's
//! poll never takes it while it is handed over; one the queue did not hand over, the next poll makes due and
//! takes; a restart makes every one due.

use dispatcher::adapters::sqlite::SqliteStore;
use dispatcher::ports::DeliveryLog;
use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::model::{Delivery, LogVersion};

const NOW_MS: i64 = 1_800_000_000_000;
const LEASE_MS: i64 = 75_000;

fn delivery(n: usize) -> Delivery {
    let source = Source { id: format!("message-{n}"), correlation_id: None, traceparent: None };
    direct(&source, &"wh1".into(), "ping", format!(r#"{{"name":"ping","payload":{{"n":{n}}}}}"#))
}

#[tokio::test]
async fn a_new_delivery_is_leased_to_its_queue_until_released_by_a_poll_or_a_restart() {
    let dir = crate::support::temp_dir("local-queue-claims");
    let store = SqliteStore::open(&dir, NOW_MS).unwrap().claiming_new(LEASE_MS);
    let (handed_over, left) = (delivery(1), delivery(2));
    let versions = store.log_deliveries(&[handed_over.clone(), left.clone()], NOW_MS).await.unwrap();
    let versions: Vec<LogVersion> = versions.into_iter().map(|v| v.expect("new, so versioned")).collect();

    let polled = store.lease(NOW_MS + 1, 10, LEASE_MS, Vec::new(), &[]).await.unwrap();
    assert!(polled.is_empty(), "both are leased to the queue that logged them: {polled:?}");
    let polled = store.lease(NOW_MS + 2, 10, LEASE_MS, Vec::new(), &versions[1..]).await.unwrap();
    assert_eq!(polled.iter().map(|job| job.delivery.id).collect::<Vec<_>>(), [left.id], "released, then leased");
    assert_eq!(polled[0].log_version.as_ref(), Some(&versions[1]));

    drop(store);
    let store = SqliteStore::open(&dir, NOW_MS + 3).unwrap();
    let polled = store.lease(NOW_MS + 3, 10, LEASE_MS, Vec::new(), &[]).await.unwrap();
    let mut ids: Vec<_> = polled.iter().map(|job| job.delivery.id).collect();
    ids.sort();
    let mut expected = vec![handed_over.id, left.id];
    expected.sort();
    assert_eq!(ids, expected, "a restart makes every lease of the process before it due");
}

/// Events waiting for their enrichers' next try: due at their time, taken leased (not taken twice), forgotten
/// only for the try that was taken, their higher try kept when published again, and due at once after a restart.
#[tokio::test]
async fn a_waiting_event_is_taken_when_due_once_and_again_after_a_restart() {
    let dir = crate::support::temp_dir("local-queue-waiting");
    let store = SqliteStore::open(&dir, NOW_MS).unwrap();
    let source = |id: &str| Source { id: id.into(), correlation_id: Some("corr".into()), traceparent: None };
    store.wait_event(b"{\"a\":1}", &source("evt-a"), 2, NOW_MS + 100).await.unwrap();
    store.wait_event(b"{\"b\":1}", &source("evt-b"), 3, NOW_MS + 200).await.unwrap();
    assert_eq!(store.next_event_due().await.unwrap(), Some(NOW_MS + 100));
    assert!(store.take_due_events(NOW_MS + 99, 10, LEASE_MS).await.unwrap().is_empty(), "not due yet");

    let taken = store.take_due_events(NOW_MS + 100, 10, LEASE_MS).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].source.id.as_str(), taken[0].attempt, &taken[0].body[..]), ("evt-a", 2, &b"{\"a\":1}"[..]));
    assert_eq!(taken[0].source.correlation_id.as_deref(), Some("corr"));
    assert!(store.take_due_events(NOW_MS + 150, 10, LEASE_MS).await.unwrap().is_empty(), "leased: not taken twice");

    // The try failed again and sent it on; forgetting the try that was taken leaves the next one.
    store.wait_event(b"{\"a\":1}", &source("evt-a"), 3, NOW_MS + 300).await.unwrap();
    store.event_done("evt-a", 2).await.unwrap();
    // Published again under its key: the schedule does not start over.
    store.wait_event(b"{\"a\":1}", &source("evt-a"), 1, NOW_MS + 300).await.unwrap();
    let taken = store.take_due_events(NOW_MS + 300, 10, LEASE_MS).await.unwrap();
    let mut tries: Vec<(String, u32)> = taken.iter().map(|w| (w.source.id.clone(), w.attempt)).collect();
    tries.sort();
    assert_eq!(tries, [("evt-a".to_owned(), 3), ("evt-b".to_owned(), 3)]);

    store.event_done("evt-b", 3).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&dir, NOW_MS + 400).unwrap();
    let taken = store.take_due_events(NOW_MS + 400, 10, LEASE_MS).await.unwrap();
    assert_eq!(
        taken.iter().map(|w| w.source.id.as_str()).collect::<Vec<_>>(),
        ["evt-a"],
        "its lease died with the process"
    );
    store.event_done("evt-a", 3).await.unwrap();
    assert_eq!(store.next_event_due().await.unwrap(), None);
}
