//! The behaviour every store passes, written once against the store traits (`store/mod.rs`) and run against
//! each store: SQLite (a real database file) and Cosmos DB (the local Cosmos server of `__integrations__/cosmos`,
//! installed and started here).

use dispatcher::delivery::sender::AttemptRecord;
use dispatcher::dispatch::delivery_id;
use dispatcher::local::new_webhook;
#[path = "support/cosmos.rs"]
mod cosmos_server;

use cosmos_server::{start_cosmos_server, EMULATOR_KEY};
use dispatcher::store::cosmos::{CosmosConfig, CosmosStore};
use dispatcher::store::sqlite::SqliteStore;
use dispatcher::store::{
    DeliveryLog, LogKey, NewDelivery, Next, Rejected, RejectedEvents, Status, StoreError, StoredWebhook, Webhooks,
};
use dispatcher::validation::Problem;
use dispatcher::webhooks::WebhookConfig;
use serde_json::json;
use std::sync::Arc;

fn webhook(id: &str, name: &str) -> StoredWebhook {
    let config = WebhookConfig::decode(
        &json!({"url": format!("https://{id}.example/hook"), "subscriptions": ["ping"], "attributes": {"name": name}}),
    )
    .unwrap();
    new_webhook(id.into(), config).unwrap()
}

fn delivery(source: &str, webhook_id: &str) -> NewDelivery {
    let body = br#"{"name":"ping","payload":{}}"#.to_vec();
    NewDelivery {
        id: delivery_id(source, webhook_id, &body),
        webhook_id: Arc::from(webhook_id),
        event: "ping".into(),
        body,
        source_id: source.into(),
        correlation_id: Some(format!("corr-{source}")),
    }
}

fn attempt(at_ms: i64, status_code: Option<u16>, error: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        at_ms,
        duration_ms: 12,
        status_code,
        error: error.map(str::to_owned),
        response: status_code.map(|c| format!("answer {c}")).unwrap_or_default(),
    }
}

async fn webhooks_are_kept_whole_and_in_order(store: &impl Webhooks) {
    assert!(store.list_webhooks().await.unwrap().is_empty());
    let (a, b) = (webhook("wh-a", "a"), webhook("wh-b", "b"));
    store.put_webhook(&a).await.unwrap();
    store.put_webhook(&b).await.unwrap();
    assert_eq!(store.get_webhook("wh-a").await.unwrap(), Some(a.clone()), "secrets and all");
    let mut changed = a.clone();
    changed.config.disabled = true;
    changed.disabled_reason = Some("HTTP 410".into());
    store.put_webhook(&changed).await.unwrap();
    assert_eq!(store.list_webhooks().await.unwrap(), [changed.clone(), b.clone()], "replaced in place, oldest first");
    assert!(store.delete_webhook("wh-a").await.unwrap());
    assert!(!store.delete_webhook("wh-a").await.unwrap(), "already gone");
    assert_eq!(store.get_webhook("wh-a").await.unwrap(), None);
    assert_eq!(store.list_webhooks().await.unwrap(), [b]);
}

async fn the_delivery_log_keeps_every_attempt(store: &impl DeliveryLog) {
    let first = delivery("m-1", "wh-log");
    store.log_delivery(&first, 1_000).await.unwrap();
    store.log_delivery(&first, 2_000).await.unwrap();
    let logged = store.get_delivery(first.id).await.unwrap().expect("logged");
    assert_eq!((logged.status, logged.created_at_ms, logged.attempts.len()), (Status::Pending, 1_000, 0));
    assert_eq!(logged.payload.get(), r#"{"name":"ping","payload":{}}"#, "the exact body");
    assert_eq!((logged.source_id.as_str(), logged.correlation_id.as_deref()), ("m-1", Some("corr-m-1")));

    let failed = attempt(1_100, Some(503), None);
    assert!(store.log_attempt(first.key(), 1, failed.clone(), Next::RetryAt { at_ms: 6_100 }).await.unwrap());
    let retrying = store.get_delivery(first.id).await.unwrap().unwrap();
    assert_eq!((retrying.status, retrying.next_attempt_at_ms), (Status::Retrying, Some(6_100)));
    let succeeded = attempt(6_200, Some(200), None);
    store
        .log_attempt(first.key(), 2, attempt(6_150, None, Some("timed out")), Next::RetryAt { at_ms: 7_000 })
        .await
        .unwrap();
    store.log_attempt(first.key(), 2, succeeded.clone(), Next::Succeeded).await.unwrap();
    let done = store.get_delivery(first.id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.attempts, [failed, succeeded], "in order; logging attempt 2 again replaced it");

    let dead = delivery("m-2", "wh-log");
    store.log_delivery(&dead, 3_000).await.unwrap();
    let reason = "HTTP 400 is not retried".to_owned();
    store
        .log_attempt(dead.key(), 1, attempt(3_100, Some(400), None), Next::Dead { reason: reason.clone() })
        .await
        .unwrap();
    let dead = store.get_delivery(dead.id).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.dead_reason), (Status::Dead, Some(reason)));

    let abandoned = delivery("m-3", "wh-log");
    store.log_delivery(&abandoned, 4_000).await.unwrap();
    let timed_out = attempt(4_100, None, Some("timed out"));
    store.log_attempt(abandoned.key(), 1, timed_out.clone(), Next::RetryAt { at_ms: 9_000 }).await.unwrap();
    assert!(store.give_up(abandoned.key(), "the webhook was deleted").await.unwrap());
    let abandoned = store.get_delivery(abandoned.id).await.unwrap().unwrap();
    assert_eq!(
        (abandoned.status, abandoned.next_attempt_at_ms, abandoned.dead_reason.as_deref()),
        (Status::Dead, None, Some("the webhook was deleted"))
    );
    assert_eq!(abandoned.attempts, [timed_out], "the attempts made are kept");

    let never = delivery("m-never", "wh-log");
    assert!(!store.give_up(never.key(), "gone").await.unwrap());
    assert!(!store.log_attempt(never.key(), 1, attempt(1, Some(200), None), Next::Succeeded).await.unwrap());
    assert!(store.get_delivery(never.id).await.unwrap().is_none());

    // A log entry is found under its own webhook only: Cosmos DB keeps it in that webhook's partition.
    let elsewhere = LogKey { id: first.id, webhook_id: "wh-other" };
    assert!(!store.give_up(elsewhere, "gone").await.unwrap());
    assert!(!store.log_attempt(elsewhere, 3, attempt(1, Some(200), None), Next::Succeeded).await.unwrap());
    let unchanged = store.get_delivery(first.id).await.unwrap().unwrap();
    assert_eq!((unchanged.status, unchanged.attempts.len()), (Status::Succeeded, 2), "unchanged");
}

async fn deliveries_page_newest_first(store: &impl DeliveryLog) {
    let ids: Vec<_> = (0..5).map(|i| delivery(&format!("p-{i}"), "wh-page")).collect();
    for (i, d) in ids.iter().enumerate() {
        store.log_delivery(d, 10_000 + i as i64).await.unwrap();
    }
    store.log_delivery(&delivery("p-other", "wh-other"), 20_000).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = store.list_deliveries("wh-page", 2, cursor.as_deref()).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|d| d.id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().rev().map(|d| d.id).collect::<Vec<_>>(), "every one once, newest first");
    match store.list_deliveries("wh-page", 2, Some("not-a-cursor")).await {
        Err(StoreError::BadCursor(cursor)) => assert_eq!(cursor, "not-a-cursor"),
        other => panic!("a bad cursor is refused: {other:?}"),
    }
}

async fn rejected_events_page_newest_first(store: &impl RejectedEvents) {
    for i in 0..3 {
        let problem =
            Problem { path: "payload.fiscalCode".into(), message: format!("\"bad-{i}\" is not a valid fiscal code") };
        store
            .reject(Rejected {
                id: format!("r-{i}"),
                received_at_ms: i,
                problems: vec![problem],
                body: format!("{{{i}}}"),
            })
            .await
            .unwrap();
    }
    let (first, cursor) = store.list_rejected(2, None).await.unwrap();
    assert_eq!(first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r-2", "r-1"]);
    assert_eq!(first[0].problems[0].message, "\"bad-2\" is not a valid fiscal code");
    let (rest, end) = store.list_rejected(2, cursor.as_deref()).await.unwrap();
    assert_eq!((rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), end), (vec!["r-0"], None));
    assert_eq!(rest[0].body, "{0}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_suite() {
    let dir = std::env::temp_dir().join(format!("store-suite-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir, 0).unwrap();
    webhooks_are_kept_whole_and_in_order(&store).await;
    the_delivery_log_keeps_every_attempt(&store).await;
    deliveries_page_newest_first(&store).await;
    rejected_events_page_newest_first(&store).await;
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmos_passes_the_store_suite() {
    let server = start_cosmos_server();
    let config = CosmosConfig {
        endpoint: server.endpoint.clone(),
        key: EMULATOR_KEY.into(),
        database: "dispatcher".into(),
        create_if_missing: true,
        retention_days: 30,
    };
    assert!(!format!("{config:?}").contains(EMULATOR_KEY), "the key is not printed");
    let store = CosmosStore::connect(&config).await.unwrap();
    webhooks_are_kept_whole_and_in_order(&store).await;
    the_delivery_log_keeps_every_attempt(&store).await;
    deliveries_page_newest_first(&store).await;
    rejected_events_page_newest_first(&store).await;
    // Connecting again finds what is there.
    let again = CosmosStore::connect(&config).await.unwrap();
    assert_eq!(again.list_webhooks().await.unwrap().len(), 1);
}
