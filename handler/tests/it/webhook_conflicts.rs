//! How the service's one way of changing a webhook (`update_webhook`) meets writers it races, with a store
//! that lets another writer in between each read and write: the change is applied again to the webhook as the
//! other writer left it, up to 16 tries, then refused with a conflict without having been written; and a
//! change made under `If-Match` is never applied to a version the client did not name.

use dispatcher::adapters::sender::Sender;
use dispatcher::adapters::sqlite::SqliteStore;
use dispatcher::ports::{StoreError, SystemClock, Version, WebhookStore};
use dispatcher::runtime::local::{LocalQueue, MemoryRateLimits};
use dispatcher::service::{Intake, Parts, Service, ServiceError};
use dispatcher_core::model::{Access, Webhook, WebhookId};
use dispatcher_core::policy::retry::RetrySchedule;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A webhook store where another writer changes the webhook's `attributes.other` just before each of the first
/// `interfere` conditional writes, which then find it changed.
struct Interfering {
    inner: Arc<SqliteStore>,
    interfere: usize,
    conditional_writes: AtomicUsize,
}

#[async_trait::async_trait]
impl WebhookStore for Interfering {
    async fn put_webhook(&self, webhook: &Webhook, expected: Option<&Version>) -> Result<Version, StoreError> {
        if expected.is_some() {
            let n = self.conditional_writes.fetch_add(1, Ordering::SeqCst);
            if n < self.interfere {
                let (mut other, version) = self.inner.get_webhook(&webhook.id).await?.expect("stored");
                other.config.attributes.insert("other".into(), format!("write {n}"));
                self.inner.put_webhook(&other, Some(&version)).await?;
            }
        }
        self.inner.put_webhook(webhook, expected).await
    }
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
        self.inner.get_webhook(id).await
    }
    async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.inner.list_webhooks().await
    }
    async fn delete_webhook(&self, id: &WebhookId) -> Result<bool, StoreError> {
        self.inner.delete_webhook(id).await
    }
}

/// The local service on a store of its own whose writes are interfered with `interfere` times, and webhook `wh1`.
async fn service(name: &str, interfere: usize) -> (Service, Arc<Interfering>) {
    let queue = Arc::new(LocalQueue::new(SqliteStore::open(&crate::support::temp_dir(name), 0).unwrap(), 60_000));
    let store = queue.store().clone();
    let webhooks = Arc::new(Interfering { inner: store.clone(), interfere, conditional_writes: AtomicUsize::new(0) });
    let service = Service::new(Parts {
        mode: "local",
        webhooks: webhooks.clone(),
        tenants: store.clone(),
        sources: store.clone(),
        webhook_cache: None,
        log: store.clone(),
        rejected: store.clone(),
        queue,
        rate_limits: Arc::new(MemoryRateLimits::default()),
        intake: Intake::Route,
        event_retries: store.clone(),
        sender: Arc::new(Sender::new(Duration::from_secs(1), true)),
        clock: Arc::new(SystemClock),
        schedule: "1s".parse::<RetrySchedule>().unwrap(),
        disable_after: None,
        operator_key: true,
    });
    let registration = json!({"id": "wh1", "url": "https://receiver.example/hook", "subscriptions": ["ping"]});
    service.create_webhook(&Access::Operator, &registration).await.unwrap();
    (service, webhooks)
}

#[tokio::test]
async fn a_change_that_meets_other_writes_is_applied_again_to_what_they_left() {
    let (service, store) = service("conflicts-retried", 3).await;
    let id = WebhookId::from("wh1");
    let (patched, _) =
        service.patch_webhook(&Access::Operator, &id, &json!({"description": "ours"}), None).await.unwrap();
    assert_eq!(store.conditional_writes.load(Ordering::SeqCst), 4, "three conflicts, then written");
    let (stored, _) = store.inner.get_webhook(&id).await.unwrap().unwrap();
    assert_eq!(stored, patched);
    assert_eq!(stored.config.description.as_deref(), Some("ours"));
    assert_eq!(
        stored.config.attributes.get("other").map(String::as_str),
        Some("write 2"),
        "the others' last write too"
    );
}

#[tokio::test]
async fn a_change_that_keeps_meeting_other_writes_gives_up_after_16_tries_without_being_written() {
    let (service, store) = service("conflicts-exhausted", usize::MAX).await;
    let id = WebhookId::from("wh1");
    let error = service.patch_webhook(&Access::Operator, &id, &json!({"description": "ours"}), None).await.unwrap_err();
    assert!(matches!(&error, ServiceError::Conflict(message) if message.contains("kept changing")), "{error}");
    assert_eq!(store.conditional_writes.load(Ordering::SeqCst), 16);
    let (stored, _) = store.inner.get_webhook(&id).await.unwrap().unwrap();
    assert_eq!(
        (stored.config.description, stored.config.attributes.get("other").cloned()),
        (None, Some("write 15".into()))
    );
}

#[tokio::test]
async fn a_change_under_if_match_is_not_applied_again_to_a_version_the_client_did_not_name() {
    let (service, store) = service("conflicts-if-match", 1).await;
    let id = WebhookId::from("wh1");
    let (_, version) = service.versioned_webhook(&Access::Operator, &id).await.unwrap();
    let error = service
        .patch_webhook(&Access::Operator, &id, &json!({"description": "ours"}), Some(&[version][..]))
        .await
        .unwrap_err();
    assert!(matches!(error, ServiceError::PreconditionFailed(_)), "{error}");
    assert_eq!(store.conditional_writes.load(Ordering::SeqCst), 1, "no second write");
    let (stored, _) = store.inner.get_webhook(&id).await.unwrap().unwrap();
    assert_eq!(stored.config.description, None, "the client's change is not made over another's");
}
