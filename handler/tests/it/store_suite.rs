//! The behaviour every store passes, written once against the ports (`ports.rs`) and run against each store:
//! SQLite (a real database file) and Cosmos DB (the local Cosmos server of `__integrations__/cosmos`, installed
//! and started here).

use crate::support::cosmos::{start_cosmos_server, EMULATOR_KEY};
use dispatcher::adapters::cosmos::{CosmosAuth, CosmosConfig, CosmosStore};
use dispatcher::adapters::sqlite::SqliteStore;
use dispatcher::ports::{
    DeliveryLog, LogKey, RateLimits, RejectedEvents, SourceStore, StoreError, TenantStore, WebhookStore,
};
use dispatcher::runtime::local::MemoryRateLimits;
use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::inbound::SourceRecord;
use dispatcher_core::model::{
    Attempt, CallbackType, Delivery, Job, Next, Problem, Rejected, Status, Tenant, TenantConfig, Token, Webhook,
};
use dispatcher_core::settle::Logged;
use serde_json::json;

fn webhook(id: &str, name: &str) -> Webhook {
    let url = format!("https://{id}.example/hook");
    crate::support::webhook(id, json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": name}}))
}

fn delivery(source: &str, webhook_id: &str) -> Delivery {
    let source = Source { id: source.into(), correlation_id: Some(format!("corr-{source}")), traceparent: None };
    direct(&source, &webhook_id.into(), "ping", r#"{"name":"ping","payload":{}}"#.into())
}

fn attempt(at_ms: i64, status_code: Option<u16>, error: Option<&str>) -> Attempt {
    Attempt {
        at_ms,
        duration_ms: 12,
        status_code,
        error: error.map(str::to_owned),
        response: status_code.map(|c| format!("answer {c}")).unwrap_or_default(),
        signed_at: Some(at_ms / 1000),
        signature: Some("v1,c2lnbmF0dXJl".into()),
    }
}

async fn webhooks_are_kept_whole_and_in_order(store: &impl WebhookStore) {
    assert!(store.list_webhooks().await.unwrap().is_empty());
    let (a, b) = (webhook("wh-a", "a"), webhook("wh-b", "b"));
    let created = store.put_webhook(&a, None).await.unwrap();
    store.put_webhook(&b, None).await.unwrap();
    assert!(matches!(store.put_webhook(&a, None).await, Err(StoreError::Conflict(_))), "created once");
    assert_eq!(store.get_webhook(&"wh-a".into()).await.unwrap(), Some((a.clone(), created.clone())), "secrets and all");
    let mut changed = a.clone();
    changed.config.disabled = true;
    changed.disabled_reason = Some("HTTP 410".into());
    let replaced = store.put_webhook(&changed, Some(&created)).await.unwrap();
    assert_ne!(replaced, created, "every write makes a new version");
    assert_eq!(store.list_webhooks().await.unwrap(), [changed.clone(), b.clone()], "replaced in place, oldest first");

    // A write from a read that is no longer current changes nothing: two writers cannot undo each other.
    let stale = store.put_webhook(&a, Some(&created)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    let foreign = store.put_webhook(&a, Some(&dispatcher::ports::Version("not-a-version".into()))).await;
    assert!(matches!(foreign, Err(StoreError::Conflict(_))), "{foreign:?}");
    assert_eq!(store.get_webhook(&"wh-a".into()).await.unwrap(), Some((changed.clone(), replaced.clone())));
    // Deleted and registered again under its id: a version read before is still stale.
    assert!(store.delete_webhook(&"wh-a".into()).await.unwrap());
    let again = store.put_webhook(&a, None).await.unwrap();
    for old in [&created, &replaced] {
        let stale = store.put_webhook(&changed, Some(old)).await;
        assert!(matches!(stale, Err(StoreError::Conflict(_))), "a version of the deleted webhook: {stale:?}");
    }
    store.put_webhook(&changed, Some(&again)).await.unwrap();
    let gone = store.put_webhook(&webhook("wh-never", "n"), Some(&created)).await;
    assert!(matches!(gone, Err(StoreError::Conflict(_))), "replacing one that is not there: {gone:?}");
    assert_eq!(store.get_webhook(&"wh-never".into()).await.unwrap(), None);
    assert!(store.delete_webhook(&"wh-a".into()).await.unwrap());
    assert!(!store.delete_webhook(&"wh-a".into()).await.unwrap(), "already gone");
    assert_eq!(store.get_webhook(&"wh-a".into()).await.unwrap(), None);
    assert_eq!(store.list_webhooks().await.unwrap(), [b]);
}

fn tenant(id: &str, services: &[&str]) -> Tenant {
    let grants = [("serviceId".to_owned(), services.iter().map(|s| s.to_string()).collect())].into();
    let config = TenantConfig { name: format!("Tenant {id}"), grants, max_webhooks: 3, disabled: false };
    Tenant { id: id.into(), config, created_at_ms: 1_000, updated_at_ms: 1_000 }
}

fn token(id: &str, tenant: &str, expires_at_ms: i64) -> Token {
    Token {
        id: id.into(),
        tenant: tenant.into(),
        name: "ci".into(),
        hash: "ab".repeat(32),
        read_only: true,
        portal: false,
        created_at_ms: 1_000,
        expires_at_ms,
        tenant_created_at_ms: 500,
    }
}

async fn tenants_and_their_tokens_are_kept(store: &impl TenantStore) {
    assert!(store.list_tenants().await.unwrap().is_empty());
    let (a, b) = (tenant("tn-a", &["s1"]), tenant("tn-b", &["s2"]));
    let created = store.put_tenant(&a, None).await.unwrap();
    store.put_tenant(&b, None).await.unwrap();
    assert!(matches!(store.put_tenant(&a, None).await, Err(StoreError::Conflict(_))), "created once");
    let mut narrowed = a.clone();
    narrowed.config.grants.insert("serviceId".into(), vec![]);
    let replaced = store.put_tenant(&narrowed, Some(&created)).await.unwrap();
    let stale = store.put_tenant(&a, Some(&created)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "a stale write changes nothing: {stale:?}");
    assert_eq!(store.get_tenant(&"tn-a".into()).await.unwrap(), Some((narrowed.clone(), replaced)));
    assert_eq!(store.list_tenants().await.unwrap(), [narrowed, b.clone()], "oldest first");

    store.put_token(&token("tok_1", "tn-a", 5_000)).await.unwrap();
    store.put_token(&token("tok_2", "tn-a", 2_000)).await.unwrap();
    store.put_token(&token("tok_3", "tn-b", 5_000)).await.unwrap();
    assert!(matches!(store.put_token(&token("tok_1", "tn-b", 9_000)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.get_token("tok_1").await.unwrap(), Some(token("tok_1", "tn-a", 5_000)), "kept whole");
    let ids = |tokens: Vec<Token>| tokens.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_tokens(&"tn-a".into(), 1_500).await.unwrap()), ["tok_1", "tok_2"]);
    assert_eq!(ids(store.list_tokens(&"tn-a".into(), 3_000).await.unwrap()), ["tok_1"], "expired ones left out");
    assert!(!store.delete_token(&"tn-b".into(), "tok_1").await.unwrap(), "another tenant's token is not revoked");
    assert!(store.delete_token(&"tn-a".into(), "tok_1").await.unwrap());
    assert_eq!(store.get_token("tok_1").await.unwrap(), None);
    assert!(store.delete_tenant(&"tn-a".into()).await.unwrap());
    assert_eq!(store.get_token("tok_2").await.unwrap(), None, "its tokens go with it");
    assert!(store.get_token("tok_3").await.unwrap().is_some(), "another tenant's stay");
    assert!(!store.delete_tenant(&"tn-a".into()).await.unwrap());
    assert_eq!(store.list_tenants().await.unwrap(), [b]);
}

fn source_record(id: &str, secret: &str, at_ms: i64) -> SourceRecord {
    let config = json!({"id": id, "verify": {"type": "github", "secrets": [secret]}});
    SourceRecord { id: id.into(), config, created_at_ms: at_ms, updated_at_ms: at_ms }
}

async fn sources_and_their_receipts_are_kept(store: &impl SourceStore) {
    assert!(store.list_sources().await.unwrap().is_empty());
    let (a, b) = (source_record("src-a", "s1", 1_000), source_record("src-b", "s2", 2_000));
    let created = store.put_source(&a, None).await.unwrap();
    store.put_source(&b, None).await.unwrap();
    assert!(matches!(store.put_source(&a, None).await, Err(StoreError::Conflict(_))), "created once");
    let rotated = SourceRecord { updated_at_ms: 3_000, ..source_record("src-a", "s3", 1_000) };
    let replaced = store.put_source(&rotated, Some(&created)).await.unwrap();
    // A write from an older read would revert the rotated secret: refused.
    let stale = store.put_source(&a, Some(&created)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "a stale write changes nothing: {stale:?}");
    assert_eq!(store.get_source("src-a").await.unwrap(), Some((rotated.clone(), replaced)));
    assert_eq!(store.list_sources().await.unwrap(), [rotated, b.clone()], "oldest first");
    assert!(store.delete_source("src-a").await.unwrap());
    assert!(!store.delete_source("src-a").await.unwrap());
    assert_eq!(store.list_sources().await.unwrap(), [b]);

    // Keys are the providers' own: any character.
    let key = "id:evt/1#?\\x";
    assert!(!store.received("src-b", key, 0).await.unwrap());
    store.record_receipt("src-b", key, 10_000).await.unwrap();
    assert!(store.received("src-b", key, 9_000).await.unwrap());
    assert!(!store.received("src-b", key, 10_001).await.unwrap(), "older than the window asked for");
    assert!(!store.received("src-a", key, 0).await.unwrap(), "each source its own");
    assert!(!store.received("src-b", "id:evt/2", 0).await.unwrap());
    store.record_receipt("src-b", key, 20_000).await.unwrap();
    assert!(store.received("src-b", key, 15_000).await.unwrap(), "a receipt recorded again is renewed");
}

async fn the_delivery_log_keeps_every_attempt(store: &impl DeliveryLog) {
    let first = delivery("m-1", "wh-log");
    let created = store.log_deliveries(std::slice::from_ref(&first), 1_000).await.unwrap();
    assert!(created[0].is_some(), "created here: {created:?}");
    assert_eq!(store.log_deliveries(std::slice::from_ref(&first), 2_000).await.unwrap(), [None], "logged before");
    let logged = store.get_delivery(first.id).await.unwrap().expect("logged");
    assert_eq!((logged.status, logged.created_at_ms, logged.attempts.len()), (Status::Pending, 1_000, 0));
    assert_eq!(logged.delivery, first, "the exact body, the source and the correlation id");
    let (state, _) = store.logged(LogKey::of(&first)).await.unwrap().expect("logged");
    assert_eq!(state, Logged { status: Status::Pending, attempts: 0 });

    // Attempt 1 of a job made from the version just created; attempt 2 logged twice, the second replacing it.
    let failed = attempt(1_100, Some(503), None);
    let job = Job::first(first.clone(), created[0].clone());
    let version = store.log_attempt(&job, failed.clone(), Next::RetryAt { at_ms: 6_100 }).await.unwrap();
    let retrying = store.get_delivery(first.id).await.unwrap().unwrap();
    assert_eq!((retrying.status, retrying.next_attempt_at_ms), (Status::Retrying, Some(6_100)));
    let second = job.next(Some(version));
    store.log_attempt(&second, attempt(6_150, None, Some("timed out")), Next::RetryAt { at_ms: 7_000 }).await.unwrap();
    let succeeded = attempt(6_200, Some(200), None);
    store.log_attempt(&second, succeeded.clone(), Next::Succeeded).await.unwrap();
    let done = store.get_delivery(first.id).await.unwrap().unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert_eq!(done.attempts, [failed, succeeded.clone()], "in order; logging attempt 2 again replaced it");
    let (state, _) = store.logged(LogKey::of(&first)).await.unwrap().unwrap();
    assert_eq!(state, Logged { status: Status::Succeeded, attempts: 2 });

    // A job whose version is stale (its entry changed since): logged all the same, as the attempt it is.
    let stale = delivery("m-stale", "wh-log");
    let version = store.log_deliveries(std::slice::from_ref(&stale), 1_500).await.unwrap()[0].clone();
    let job = Job::first(stale.clone(), version);
    store.log_attempt(&job, attempt(1_600, Some(503), None), Next::RetryAt { at_ms: 9_000 }).await.unwrap();
    store.log_attempt(&job, succeeded.clone(), Next::Succeeded).await.unwrap();
    let entry = store.get_delivery(stale.id).await.unwrap().unwrap();
    assert_eq!((entry.status, entry.attempts.clone()), (Status::Succeeded, vec![succeeded.clone()]));

    let dead = delivery("m-2", "wh-log");
    store.log_deliveries(std::slice::from_ref(&dead), 3_000).await.unwrap();
    let reason = "HTTP 400 is not retried".to_owned();
    let refused = attempt(3_100, Some(400), None);
    store.log_attempt(&Job::first(dead.clone(), None), refused, Next::Dead { reason: reason.clone() }).await.unwrap();
    let entry = store.get_delivery(dead.id).await.unwrap().unwrap();
    assert_eq!((entry.status, entry.dead_reason), (Status::Dead, Some(reason)));

    // Reopened (a manual retry): due again, with its attempts; the job is for the attempt after them.
    let reopened = store.reopen(dead.id, 3_500).await.unwrap().expect("reopened");
    assert_eq!((reopened.delivery.id, reopened.attempts_made), (dead.id, 1));
    let entry = store.get_delivery(dead.id).await.unwrap().unwrap();
    assert_eq!((entry.status, entry.dead_reason, entry.attempts.len()), (Status::Retrying, None, 1));
    assert!(store.reopen(delivery("m-unknown", "wh-log").id, 3_500).await.unwrap().is_none());

    let abandoned = delivery("m-3", "wh-log");
    store.log_deliveries(std::slice::from_ref(&abandoned), 4_000).await.unwrap();
    let timed_out = attempt(4_100, None, Some("timed out"));
    let job = Job::first(abandoned.clone(), None);
    store.log_attempt(&job, timed_out.clone(), Next::RetryAt { at_ms: 9_000 }).await.unwrap();
    store.give_up(&abandoned, "the webhook was deleted", 4_200).await.unwrap();
    let entry = store.get_delivery(abandoned.id).await.unwrap().unwrap();
    assert_eq!(
        (entry.status, entry.next_attempt_at_ms, entry.dead_reason.as_deref()),
        (Status::Dead, None, Some("the webhook was deleted"))
    );
    assert_eq!(entry.attempts, [timed_out], "the attempts made are kept");

    // A delivery never logged (its entry expired, or its job came from elsewhere) is logged when it moves on.
    let unknown = delivery("m-never", "wh-log");
    assert!(store.logged(LogKey::of(&unknown)).await.unwrap().is_none());
    store.give_up(&unknown, "gone", 5_000).await.unwrap();
    assert_eq!(store.get_delivery(unknown.id).await.unwrap().unwrap().status, Status::Dead);
    let late = delivery("m-late", "wh-log");
    store.log_attempt(&Job::first(late.clone(), None), attempt(5_100, Some(200), None), Next::Succeeded).await.unwrap();
    assert_eq!(store.get_delivery(late.id).await.unwrap().unwrap().attempts.len(), 1);

    // A log entry is found under its own webhook only: Cosmos DB keeps it in that webhook's partition.
    let elsewhere = LogKey { id: first.id, webhook_id: &"wh-other".into() };
    assert!(store.logged(elsewhere).await.unwrap().is_none());
}

async fn deliveries_page_newest_first(store: &impl DeliveryLog) {
    let ids: Vec<_> = (0..5).map(|i| delivery(&format!("p-{i}"), "wh-page")).collect();
    for (i, d) in ids.iter().enumerate() {
        store.log_deliveries(std::slice::from_ref(d), 10_000 + i as i64).await.unwrap();
    }
    store.log_deliveries(&[delivery("p-other", "wh-other")], 20_000).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (page, next) = store.list_deliveries(&"wh-page".into(), None, 2, cursor.as_deref()).await.unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|d| d.delivery.id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().rev().map(|d| d.id).collect::<Vec<_>>(), "every one once, newest first");
    match store.list_deliveries(&"wh-page".into(), None, 2, Some("not-a-cursor")).await {
        Err(StoreError::BadCursor(cursor)) => assert_eq!(cursor, "not-a-cursor"),
        other => panic!("a bad cursor is refused: {other:?}"),
    }

    // Those of one status only, paged: p-1 and p-3 succeed, p-4 is dead.
    for (i, next) in [(1, Next::Succeeded), (3, Next::Succeeded), (4, Next::Dead { reason: "HTTP 400".into() })] {
        let job = Job::first(ids[i].clone(), None);
        store.log_attempt(&job, attempt(30_000, Some(200), None), next).await.unwrap();
    }
    let (page, next) = store.list_deliveries(&"wh-page".into(), Some(Status::Succeeded), 1, None).await.unwrap();
    assert_eq!(page.iter().map(|e| e.delivery.id).collect::<Vec<_>>(), [ids[3].id]);
    let (rest, _) =
        store.list_deliveries(&"wh-page".into(), Some(Status::Succeeded), 5, next.as_deref()).await.unwrap();
    assert_eq!(rest.iter().map(|e| (e.delivery.id, e.status)).collect::<Vec<_>>(), [(ids[1].id, Status::Succeeded)]);
    let (pending, _) = store.list_deliveries(&"wh-page".into(), Some(Status::Pending), 10, None).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.delivery.id).collect::<Vec<_>>(), [ids[2].id, ids[0].id]);

    // Counted by status from a time on (created at 10,000 + i): p-0 falls before the window. A callback, sent
    // to the webhook's owner rather than to its URL, is neither counted nor its last failure.
    assert_eq!(store.last_failure(&"wh-page".into()).await.unwrap().map(|e| e.delivery.id), Some(ids[4].id));
    let kind = Some(CallbackType::DeliveryFailure);
    let callback = Delivery { event: "DeliveryFailure".into(), callback: kind, ..delivery("p-callback", "wh-page") };
    store.log_deliveries(std::slice::from_ref(&callback), 40_000).await.unwrap();
    store.give_up(&callback, "HTTP 500", 40_001).await.unwrap();
    let logged = store.get_delivery(callback.id).await.unwrap().expect("logged");
    assert_eq!((logged.delivery.callback, logged.status), (kind, Status::Dead), "kept as the callback it is");
    assert_eq!(store.last_failure(&"wh-page".into()).await.unwrap().map(|e| e.delivery.id), Some(ids[4].id));
    assert_eq!(store.last_failure(&"wh-other".into()).await.unwrap(), None);
    let counts = store.count_deliveries(&"wh-page".into(), 10_001).await.unwrap();
    assert_eq!((counts.pending, counts.succeeded, counts.dead, counts.total()), (1, 2, 1, 4), "{counts:?}");
    assert_eq!(store.count_deliveries(&"wh-page".into(), 0).await.unwrap().pending, 2);
    assert_eq!(store.count_deliveries(&"wh-none".into(), 0).await.unwrap().total(), 0);
}

/// A Cosmos DB document of a callback written before deliveries carried `callbackType`: read back as the
/// callback it is, and neither counted nor a last failure.
async fn a_callback_logged_before_deliveries_said_so_is_still_left_out_of_health(store: &CosmosStore) {
    let legacy = Delivery { event: "DeliveryFailure".into(), callback: None, ..delivery("p-legacy", "wh-legacy") };
    store.log_deliveries(std::slice::from_ref(&legacy), 50_000).await.unwrap();
    store.give_up(&legacy, "HTTP 500", 50_001).await.unwrap();
    let logged = store.get_delivery(legacy.id).await.unwrap().expect("logged");
    assert_eq!(logged.delivery.callback, Some(CallbackType::DeliveryFailure), "read by its name");
    assert_eq!(store.last_failure(&"wh-legacy".into()).await.unwrap(), None);
    assert_eq!(store.count_deliveries(&"wh-legacy".into(), 0).await.unwrap().total(), 0);
}

async fn rejected_events_page_newest_first(store: &impl RejectedEvents) {
    for i in 0..3 {
        let problem = Problem::new("payload.fiscalCode", format!("\"bad-{i}\" is not a valid fiscal code"));
        store.reject(&Rejected::new(format!("r-{i}"), i, vec![problem], format!("{{{i}}}").as_bytes())).await.unwrap();
    }
    let (first, cursor) = store.list_rejected(2, None).await.unwrap();
    assert_eq!(first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r-2", "r-1"]);
    assert_eq!(first[0].problems[0].message, "\"bad-2\" is not a valid fiscal code");
    let (rest, end) = store.list_rejected(2, cursor.as_deref()).await.unwrap();
    assert_eq!((rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), end), (vec!["r-0"], None));
    assert_eq!(rest[0].body, "{0}");
}

/// Two instances reserving slots of one webhook at once, all asking at the same time: every slot is taken once,
/// the first is now, and each is an interval (100 ms at 10 a second) after the one before.
async fn rate_limits_hold_across_instances(one: &dyn RateLimits, other: &dyn RateLimits) {
    let limit = std::num::NonZeroU32::new(10).unwrap();
    let now_ms = 1_800_000_000_000;
    async fn reserve(limits: &dyn RateLimits, limit: std::num::NonZeroU32, now_ms: i64) -> Vec<i64> {
        let mut slots = Vec::new();
        for _ in 0..8 {
            slots.extend(limits.reserve(&"wh-paced".into(), limit, now_ms).await.unwrap());
        }
        slots
    }
    let (mut slots, theirs) = tokio::join!(reserve(one, limit, now_ms), reserve(other, limit, now_ms));
    slots.extend(theirs);
    slots.sort_unstable();
    assert!(slots.len() >= 8, "most reservations got a slot: {slots:?}");
    let expected: Vec<i64> = (0..slots.len() as i64).map(|n| now_ms + n * 100).collect();
    assert_eq!(slots, expected);
    let unrelated = one.reserve(&"wh-other".into(), limit, now_ms).await.unwrap();
    assert_eq!(unrelated, Some(now_ms), "each webhook has its own slots");
}

#[tokio::test]
async fn memory_rate_limits_pass_the_store_suite() {
    let limits = MemoryRateLimits::default();
    rate_limits_hold_across_instances(&limits, &limits).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_suite() {
    let dir = std::env::temp_dir().join(format!("store-suite-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir, 0).unwrap();
    webhooks_are_kept_whole_and_in_order(&store).await;
    tenants_and_their_tokens_are_kept(&store).await;
    sources_and_their_receipts_are_kept(&store).await;
    the_delivery_log_keeps_every_attempt(&store).await;
    deliveries_page_newest_first(&store).await;
    rejected_events_page_newest_first(&store).await;
    assert_eq!(store.prune_receipts(15_000, 500, &|| false).await.unwrap(), 0, "the receipt of 20 000 is kept");
    assert_eq!(store.prune_receipts(25_000, 500, &|| false).await.unwrap(), 1);
    assert!(!store.received("src-b", "id:evt/1#?\\x", 0).await.unwrap());
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmos_passes_the_store_suite() {
    let server = start_cosmos_server();
    let config = CosmosConfig {
        endpoint: server.endpoint.clone(),
        auth: CosmosAuth::Key(EMULATOR_KEY.into()),
        database: "dispatcher".into(),
        create_if_missing: true,
        retention_days: 30,
    };
    assert!(!format!("{config:?}").contains(EMULATOR_KEY), "the key is not printed");
    let store = CosmosStore::new(config.clone());
    webhooks_are_kept_whole_and_in_order(&store).await;
    tenants_and_their_tokens_are_kept(&store).await;
    sources_and_their_receipts_are_kept(&store).await;
    the_delivery_log_keeps_every_attempt(&store).await;
    deliveries_page_newest_first(&store).await;
    rejected_events_page_newest_first(&store).await;
    a_callback_logged_before_deliveries_said_so_is_still_left_out_of_health(&store).await;
    // Connecting again finds what is there.
    let again = CosmosStore::new(config);
    assert_eq!(again.list_webhooks().await.unwrap().len(), 1);
    rate_limits_hold_across_instances(&store, &again).await;
}
