//! Managing webhooks: register, read, replace, patch (JSON merge patch), delete, the signing secret and its
//! rotation, a ping, and importing a file of webhooks in the original configuration shape. Every change is
//! made by [`Service::update_webhook`], from a fresh read and written only if nobody changed the webhook
//! meanwhile, and read back into the routing cache before the answer.

use super::{Invalid, Service, ServiceError};
use crate::ports::{StoreError, WebhookVersion};
use dispatcher_core::dispatch::{self, Source};
use dispatcher_core::model::{DeliveryId, Webhook, WebhookConfig, WebhookId};
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

fn not_found(id: &WebhookId) -> ServiceError {
    ServiceError::NotFound { what: "webhook", id: id.to_string() }
}

/// How often a change is made again from a fresh read when others keep changing the webhook first.
const UPDATE_TRIES: usize = 16;

/// What [`Service::update_webhook`] did.
#[derive(Debug)]
pub(super) enum Updated {
    /// The change was written: the webhook as it is now, and its new version.
    Changed(Webhook, WebhookVersion),
    /// The change left the webhook as it was.
    Unchanged(Webhook, WebhookVersion),
    /// There is no such webhook.
    Missing,
}

impl Updated {
    /// The webhook as it is now; [`ServiceError::NotFound`] when there is none.
    fn found(self, id: &WebhookId) -> Result<(Webhook, WebhookVersion), ServiceError> {
        match self {
            Updated::Changed(webhook, version) | Updated::Unchanged(webhook, version) => Ok((webhook, version)),
            Updated::Missing => Err(not_found(id)),
        }
    }
}

impl Service {
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, ServiceError> {
        Ok(self.webhooks.store().list_webhooks().await?)
    }

    pub async fn webhook(&self, id: &WebhookId) -> Result<Webhook, ServiceError> {
        Ok(self.versioned_webhook(id).await?.0)
    }

    /// A webhook with its version (the API's `ETag`).
    pub async fn versioned_webhook(&self, id: &WebhookId) -> Result<(Webhook, WebhookVersion), ServiceError> {
        self.webhooks.store().get_webhook(id).await?.ok_or_else(|| not_found(id))
    }

    /// Changes webhook `id`: `change` gets it as stored now and gives its new value (or `None` to leave it
    /// as it is), which is written only if the webhook is still the one read; otherwise it is read again and
    /// `change` applied again, so two changes made at once both survive. With `if_match` (the versions an API
    /// client's `If-Match` names), a webhook of another version is not changed:
    /// [`ServiceError::PreconditionFailed`].
    pub(super) async fn update_webhook(
        &self,
        id: &WebhookId,
        if_match: Option<&[WebhookVersion]>,
        mut change: impl FnMut(&Webhook) -> Result<Option<Webhook>, ServiceError>,
    ) -> Result<Updated, ServiceError> {
        let store = self.webhooks.store();
        for _ in 0..UPDATE_TRIES {
            let Some((current, version)) = store.get_webhook(id).await? else { return Ok(Updated::Missing) };
            if if_match.is_some_and(|expected| !expected.contains(&version)) {
                return Err(ServiceError::PreconditionFailed(format!(
                    "webhook {id:?} changed since the version given in If-Match: read it again (its ETag) and retry"
                )));
            }
            let Some(changed) = change(&current)? else { return Ok(Updated::Unchanged(current, version)) };
            match store.put_webhook(&changed, Some(&version)).await {
                Ok(written) => {
                    self.webhooks.changed().await;
                    return Ok(Updated::Changed(changed, written));
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(ServiceError::Conflict(format!("webhook {id:?} kept changing while this change was made: try again")))
    }

    /// Registers a webhook from a registration body (which may name its id); the answer holds its secret.
    pub async fn create_webhook(&self, body: &Value) -> Result<Webhook, ServiceError> {
        let (id, config) =
            decode_registration(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        let id = match id {
            Some(id) => id,
            None => self.random_id("wh_")?,
        };
        let webhook = Webhook::new(id.into(), config, self.new_secret()?, self.clock.now_ms());
        // An id taken meanwhile is a conflict of the store, answered 409 like the one above.
        self.webhooks.store().put_webhook(&webhook, None).await?;
        self.webhooks.changed().await;
        Ok(webhook)
    }

    /// Replaces a webhook's configuration.
    pub async fn replace_webhook(
        &self,
        id: &WebhookId,
        body: &Value,
        if_match: Option<&[WebhookVersion]>,
    ) -> Result<(Webhook, WebhookVersion), ServiceError> {
        let config =
            WebhookConfig::decode(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        self.reconfigure(id, if_match, |_| Ok(config.clone())).await
    }

    /// Changes some fields of a webhook's configuration (RFC 7396 JSON merge patch), applied to the webhook as
    /// stored when it is written: fields the patch leaves out keep what others wrote meanwhile.
    pub async fn patch_webhook(
        &self,
        id: &WebhookId,
        patch: &Value,
        if_match: Option<&[WebhookVersion]>,
    ) -> Result<(Webhook, WebhookVersion), ServiceError> {
        self.reconfigure(id, if_match, |webhook| {
            let mut merged =
                serde_json::to_value(&webhook.config).map_err(|e| ServiceError::Internal(e.to_string()))?;
            json_patch::merge(&mut merged, patch);
            WebhookConfig::decode(&merged)
                .map_err(|report| ServiceError::Invalid { what: Invalid::PatchedWebhook, report })
        })
        .await
    }

    /// Gives webhook `id` the configuration `config_of` makes from it as stored (see `update_webhook`).
    async fn reconfigure(
        &self,
        id: &WebhookId,
        if_match: Option<&[WebhookVersion]>,
        config_of: impl Fn(&Webhook) -> Result<WebhookConfig, ServiceError>,
    ) -> Result<(Webhook, WebhookVersion), ServiceError> {
        let now_ms = self.clock.now_ms();
        let changed =
            self.update_webhook(id, if_match, |webhook| Ok(Some(webhook.reconfigured(config_of(webhook)?, now_ms))));
        changed.await?.found(id)
    }

    /// Deletes a webhook; its deliveries still queued end dead when their turn comes.
    pub async fn delete_webhook(&self, id: &WebhookId) -> Result<(), ServiceError> {
        if !self.webhooks.store().delete_webhook(id).await? {
            return Err(not_found(id));
        }
        self.webhooks.changed().await;
        Ok(())
    }

    /// A new signing secret; the current one keeps signing for 24 hours.
    pub async fn rotate_secret(&self, id: &WebhookId) -> Result<Webhook, ServiceError> {
        let (fresh, now_ms) = (self.new_secret()?, self.clock.now_ms());
        // A retry of a write that went through finds the new secret there already: rotated once.
        let rotate = |webhook: &Webhook| Ok((webhook.secret != fresh).then(|| webhook.rotated(fresh.clone(), now_ms)));
        let rotated = self.update_webhook(id, None, rotate);
        Ok(rotated.await?.found(id)?.0)
    }

    /// Queues `{"name":"ping","payload":{}}` for this webhook now, outside routing; returns the delivery's id.
    pub async fn ping(&self, id: &WebhookId) -> Result<DeliveryId, ServiceError> {
        let webhook = self.webhook(id).await?;
        let source = Source { id: self.random_id("evt_")?, correlation_id: None, traceparent: None };
        let delivery = dispatch::direct(&source, &webhook.id, "ping", r#"{"name":"ping","payload":{}}"#.to_owned());
        let id = delivery.id;
        self.submit(vec![delivery], &*self.queue).await?;
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
                Ok((id, config)) => decoded.push((WebhookId::from(id.unwrap_or_else(|| derived_id(&config))), config)),
                Err(report) => problems.push(format!("[{i}]: {report}")),
            }
        }
        if !problems.is_empty() {
            return Err(ImportError::Invalid(problems.join("; ")));
        }
        let mut changed = 0;
        for (id, config) in decoded {
            let now_ms = self.clock.now_ms();
            let reconfigured = |existing: &Webhook| {
                Ok((existing.config != config).then(|| existing.reconfigured(config.clone(), now_ms)))
            };
            match self.update_webhook(&id, None, reconfigured).await? {
                Updated::Changed(..) => changed += 1,
                Updated::Unchanged(..) => {}
                Updated::Missing => {
                    let webhook = Webhook::new(id, config, self.new_secret()?, now_ms);
                    self.webhooks.store().put_webhook(&webhook, None).await.map_err(ServiceError::from)?;
                    changed += 1;
                }
            }
        }
        self.webhooks.changed().await;
        Ok(changed)
    }

    /// The time now, as the service sees it (for views that depend on it, such as a secret's overlap).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
