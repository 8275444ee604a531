//! Managing webhooks: register, read, replace, patch (JSON merge patch), delete, the signing secret and its
//! rotation, a ping, and importing a file of webhooks in the original configuration shape. Every change is
//! read back into the routing cache before the answer.

use super::{Invalid, Service, ServiceError};
use dispatcher_core::dispatch::{self, Source};
use dispatcher_core::model::{DeliveryId, Webhook, WebhookConfig};
use dispatcher_core::webhooks::registration::{decode_registration, derived_id};
use serde_json::Value;

/// Why a file of webhooks cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a JSON array of webhooks: {0}")]
    NotAnArray(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::NotFound { what: "webhook", id: id.to_owned() }
}

impl Service {
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ServiceError> {
        Ok(self.webhooks.store().list_webhooks().await?)
    }

    pub async fn webhook(&self, id: &str) -> Result<Webhook, ServiceError> {
        self.webhooks.store().get_webhook(id).await?.ok_or_else(|| not_found(id))
    }

    /// Registers a webhook from a registration body (which may name its id); the answer holds its secret.
    pub async fn create_webhook(&self, body: &Value) -> Result<Webhook, ServiceError> {
        let (id, config) =
            decode_registration(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        let id = match id {
            Some(id) if self.webhooks.store().get_webhook(&id).await?.is_some() => {
                return Err(ServiceError::Conflict(format!("webhook {id:?} already exists")));
            }
            Some(id) => id,
            None => self.random_id("wh_")?,
        };
        let webhook = Webhook::new(id.into(), config, self.new_secret()?, self.clock.now_ms());
        self.save(&webhook).await?;
        Ok(webhook)
    }

    /// Replaces a webhook's configuration.
    pub async fn replace_webhook(&self, id: &str, body: &Value) -> Result<Webhook, ServiceError> {
        let webhook = self.webhook(id).await?;
        let config =
            WebhookConfig::decode(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        self.reconfigure(webhook, config).await
    }

    /// Changes some fields of a webhook's configuration (RFC 7396 JSON merge patch).
    pub async fn patch_webhook(&self, id: &str, patch: &Value) -> Result<Webhook, ServiceError> {
        let webhook = self.webhook(id).await?;
        let mut merged = serde_json::to_value(&webhook.config).map_err(|e| ServiceError::Internal(e.to_string()))?;
        json_patch::merge(&mut merged, patch);
        let config = WebhookConfig::decode(&merged)
            .map_err(|report| ServiceError::Invalid { what: Invalid::PatchedWebhook, report })?;
        self.reconfigure(webhook, config).await
    }

    async fn reconfigure(&self, webhook: Webhook, config: WebhookConfig) -> Result<Webhook, ServiceError> {
        let webhook = webhook.reconfigured(config, self.clock.now_ms());
        self.save(&webhook).await?;
        Ok(webhook)
    }

    /// Deletes a webhook; its deliveries still queued end dead when their turn comes.
    pub async fn delete_webhook(&self, id: &str) -> Result<(), ServiceError> {
        if !self.webhooks.store().delete_webhook(id).await? {
            return Err(not_found(id));
        }
        self.webhooks.refresh().await?;
        Ok(())
    }

    /// A new signing secret; the current one keeps signing for 24 hours.
    pub async fn rotate_secret(&self, id: &str) -> Result<Webhook, ServiceError> {
        let webhook = self.webhook(id).await?.rotated(self.new_secret()?, self.clock.now_ms());
        self.save(&webhook).await?;
        Ok(webhook)
    }

    /// Queues `{"name":"ping","payload":{}}` for this webhook now, outside routing; returns the delivery's id.
    pub async fn ping(&self, id: &str) -> Result<DeliveryId, ServiceError> {
        let webhook = self.webhook(id).await?;
        let source = Source { id: self.random_id("evt_")?, correlation_id: None, traceparent: None };
        let delivery = dispatch::direct(&source, &webhook.id, "ping", r#"{"name":"ping","payload":{}}"#.to_owned());
        let id = delivery.id;
        self.queue.submit(vec![delivery], self.clock.now_ms()).await?;
        Ok(id)
    }

    /// Upserts the webhooks of a file in the original configuration shape (a JSON array). A webhook without an
    /// `id` gets one derived from its URL and attributes, so importing the same file twice changes nothing.
    /// Returns how many were created or changed.
    pub async fn import_webhooks(&self, entries: &Value) -> Result<usize, ImportError> {
        let entries = entries
            .as_array()
            .ok_or_else(|| ImportError::NotAnArray(dispatcher_core::model::kind_of(entries).to_owned()))?;
        let mut problems = Vec::new();
        let mut decoded = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match decode_registration(entry) {
                Ok((id, config)) => decoded.push((id.unwrap_or_else(|| derived_id(&config)), config)),
                Err(report) => problems.push(format!("[{i}]: {report}")),
            }
        }
        if !problems.is_empty() {
            return Err(ImportError::Invalid(problems.join("; ")));
        }
        let mut changed = 0;
        for (id, config) in decoded {
            let store = self.webhooks.store();
            let webhook = match store.get_webhook(&id).await.map_err(ServiceError::from)? {
                Some(existing) if existing.config == config => continue,
                Some(existing) => existing.reconfigured(config, self.clock.now_ms()),
                None => Webhook::new(id.into(), config, self.new_secret()?, self.clock.now_ms()),
            };
            store.put_webhook(&webhook).await.map_err(ServiceError::from)?;
            changed += 1;
        }
        self.webhooks.refresh().await.map_err(ServiceError::from)?;
        Ok(changed)
    }

    async fn save(&self, webhook: &Webhook) -> Result<(), ServiceError> {
        self.webhooks.store().put_webhook(webhook).await?;
        self.webhooks.refresh().await?;
        Ok(())
    }

    /// The time now, as the service sees it (for views that depend on it, such as a secret's overlap).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
