//! The webhooks and their tenants as routing sees them, read from the stores and kept: once per change of this process, and, when
//! other processes change them too (Azure), again once the copy is older than its maximum age. One read at a
//! time: when the copy goes stale under load, the concurrent callers wait for that one read.

use crate::ports::{StoreError, TenantStore, WebhookStore};
use dispatcher_core::webhooks::WebhookIndex;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub struct WebhookCache {
    store: Arc<dyn WebhookStore>,
    tenants: Arc<dyn TenantStore>,
    max_age: Option<Duration>,
    current: RwLock<Option<(Instant, Arc<WebhookIndex>)>>,
    reading: tokio::sync::Mutex<()>,
}

impl WebhookCache {
    pub fn new(store: Arc<dyn WebhookStore>, tenants: Arc<dyn TenantStore>, max_age: Option<Duration>) -> WebhookCache {
        WebhookCache { store, tenants, max_age, current: RwLock::default(), reading: tokio::sync::Mutex::new(()) }
    }

    /// The store the webhooks come from.
    pub fn store(&self) -> &dyn WebhookStore {
        &*self.store
    }

    /// The copy held now, whatever its age; `None` before the first read.
    pub fn current(&self) -> Option<Arc<WebhookIndex>> {
        self.current.read().ok().and_then(|current| current.as_ref().map(|(_, set)| set.clone()))
    }

    fn fresh(&self) -> Option<Arc<WebhookIndex>> {
        let current = self.current.read().ok()?;
        let (read_at, set) = current.as_ref()?;
        self.max_age.is_none_or(|max| read_at.elapsed() < max).then(|| set.clone())
    }

    /// The webhooks, read again when the copy is missing or too old.
    pub async fn get(&self) -> Result<Arc<WebhookIndex>, StoreError> {
        if let Some(set) = self.fresh() {
            return Ok(set);
        }
        let _reading = self.reading.lock().await;
        match self.fresh() {
            Some(set) => Ok(set),
            None => self.read().await,
        }
    }

    /// Reads the webhooks again now: after a change made by this process.
    pub async fn refresh(&self) -> Result<Arc<WebhookIndex>, StoreError> {
        let _reading = self.reading.lock().await;
        self.read().await
    }

    /// Reads the webhooks and tenants again after a change this process wrote; when that read fails, forgets the copy, so
    /// that the next use reads them (a change written is never reported as failed for its read-back).
    pub async fn changed(&self) {
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "the webhooks could not be read again after a change: they are read at next use");
            if let Ok(mut current) = self.current.write() {
                *current = None;
            }
        }
    }

    async fn read(&self) -> Result<Arc<WebhookIndex>, StoreError> {
        let (webhooks, tenants) = tokio::try_join!(self.store.list_webhooks(), self.tenants.list_tenants())?;
        let set = Arc::new(WebhookIndex::with_tenants(webhooks, tenants));
        if let Ok(mut current) = self.current.write() {
            *current = Some((Instant::now(), set.clone()));
        }
        Ok(set)
    }
}
