//! Retention in local mode: settled deliveries and rejected events older than the retention are pruned from the
//! SQLite file, what is still due or recent stays, and the freed pages are reused, so that under a steady load
//! the file stops growing.

use dispatcher::adapters::sqlite::{Pruned, SqliteStore, PRUNE_BATCH};
use dispatcher::ports::{DeliveryLog, RejectedEvents};
use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::model::{Delivery, Rejected};

const DAY_MS: i64 = 86_400_000;
const NOW_MS: i64 = 1_800_000_000_000;

fn delivery(n: usize) -> Delivery {
    let source = Source { id: format!("message-{n}"), correlation_id: None, traceparent: None };
    let body = format!(r#"{{"name":"ping","payload":{{"n":{n},"padding":"{}"}}}}"#, "x".repeat(200));
    direct(&source, &"wh1".into(), "ping", body)
}

/// `count` dead deliveries and as many rejected events, created at `at_ms`, numbered from `from`.
async fn settle_old(store: &SqliteStore, from: usize, count: usize, at_ms: i64) {
    for n in from..from + count {
        store.give_up(&delivery(n), "the receiver answered 400", at_ms).await.unwrap();
        let rejected =
            Rejected { id: format!("rej-{n}"), received_at_ms: at_ms, problems: Vec::new(), body: "{}".into() };
        store.reject(&rejected).await.unwrap();
    }
}

/// The file's pages, and how many of them are free.
fn pages(store: &SqliteStore) -> (i64, i64) {
    let connection = rusqlite::Connection::open(store.path()).unwrap();
    let count = |pragma: &str| connection.query_row(pragma, [], |r| r.get::<_, i64>(0)).unwrap();
    (count("PRAGMA page_count"), count("PRAGMA freelist_count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_older_than_the_retention_goes_and_what_is_due_or_recent_stays() {
    let dir = crate::support::temp_dir("retention");
    let store = SqliteStore::open(&dir, NOW_MS).unwrap();
    settle_old(&store, 0, 1_200, NOW_MS - 40 * DAY_MS).await;
    // Old but still due (pending): never pruned, whatever its age.
    let due = delivery(9_000);
    store.log_deliveries(std::slice::from_ref(&due), NOW_MS - 40 * DAY_MS).await.unwrap();
    settle_old(&store, 10_000, 3, NOW_MS - DAY_MS).await;

    let pruned = store.prune(NOW_MS - 30 * DAY_MS, PRUNE_BATCH, &|| false).await.unwrap();
    assert_eq!(pruned, Pruned { deliveries: 1_200, rejected_events: 1_200 });
    assert!(store.get_delivery(delivery(7).id).await.unwrap().is_none());
    assert!(store.get_delivery(due.id).await.unwrap().is_some(), "a due delivery stays");
    assert!(store.get_delivery(delivery(10_001).id).await.unwrap().is_some(), "a recent one stays");
    assert_eq!(store.list_rejected(100, None).await.unwrap().0.len(), 3);
    assert_eq!(store.prune(NOW_MS - 30 * DAY_MS, PRUNE_BATCH, &|| false).await.unwrap(), Pruned::default());
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_steady_load_the_file_stops_growing() {
    let dir = crate::support::temp_dir("retention-soak");
    let store = SqliteStore::open(&dir, NOW_MS).unwrap();
    // Four retention windows of 2,000 deliveries each: each is settled, then pruned when the next has come.
    let mut sizes = Vec::new();
    for window in 0..4 {
        settle_old(&store, window * 2_000, 2_000, NOW_MS - (40 - window as i64) * DAY_MS).await;
        let pruned = store.prune(NOW_MS - (40 - window as i64) * DAY_MS + 1, PRUNE_BATCH, &|| false).await.unwrap();
        assert_eq!(pruned.deliveries, 2_000, "window {window}");
        sizes.push(pages(&store));
    }
    let (first, last) = (sizes[0].0, sizes[3].0);
    // The first window's pages are all the file ever needs: later windows reuse them (a few pages of slack for
    // index pages split differently).
    assert!(last <= first + first / 20, "pages per window: {sizes:?}");
    assert!(sizes.iter().all(|(_, free)| *free > 0), "the freed pages are kept for reuse: {sizes:?}");
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
