//! What the API runs on: local mode's `App` (SQLite, its own delivery workers) or the Functions handler
//! (Cosmos DB, Service Bus). The routes are the same; only publishing and re-sending differ.

use super::problem::ApiError;
use super::views::InfoView;
use crate::dispatch::DeliveryId;
use crate::events::Event;
use crate::local::ApiKey;
use crate::store::{DeliveryLog, DeliveryRecord, Rejected, RejectedEvents, StoreError, StoredWebhook, Webhooks};

/// Everything the API reads and writes.
pub trait Store: Webhooks + DeliveryLog + RejectedEvents {}

impl<T: Webhooks + DeliveryLog + RejectedEvents> Store for T {}

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The store, connected (on Azure, on first use).
    async fn store(&self) -> Result<&dyn Store, StoreError>;

    /// Called after every change of a webhook, so that routing sees it.
    async fn webhooks_changed(&self) -> Result<(), StoreError>;

    /// Takes a valid event (`body` is its exact text) under `source_id`, the source of its delivery ids.
    /// Returns once it will be delivered even if the process dies; with the number of deliveries when known.
    async fn publish(
        &self,
        event: &Event,
        body: &[u8],
        source_id: &str,
        correlation_id: Option<String>,
    ) -> Result<Option<usize>, ApiError>;

    /// Queues one delivery of `body` to `webhook` outside routing (a ping).
    async fn deliver_now(&self, webhook: &StoredWebhook, event: &str, body: Vec<u8>) -> Result<DeliveryId, ApiError>;

    /// Sends a logged delivery again, with the same id. False when it is being attempted right now.
    async fn retry(&self, delivery: &DeliveryRecord) -> Result<bool, ApiError>;

    /// Records a refused event.
    async fn reject(&self, rejected: Rejected) -> Result<(), StoreError> {
        self.store().await?.reject(rejected).await
    }

    fn info(&self) -> InfoView;

    /// The key every call must carry, when the API checks one itself (on Azure, the host checks it).
    fn api_key(&self) -> Option<&ApiKey>;
}
