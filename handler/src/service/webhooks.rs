//! Managing webhooks: register, read, replace, patch (JSON merge patch), delete, the signing secret and its
//! rotation, a ping, and importing a file of webhooks in the original configuration shape. Every change is
//! made by [`Service::update_webhook`], from a fresh read and written only if nobody changed the webhook
//! meanwhile, and read back into the routing cache before the answer.

use super::access::require_writable;
use super::versioned::{self, Updated, Webhooks};
use super::{Invalid, Service, ServiceError};
use crate::ports::Version;
use dispatcher_core::dispatch::{self, Source};
use dispatcher_core::inbound::received;
use dispatcher_core::model::{join, Access, Problem, Report, TenantId};
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

/// `webhook` when `access` may see it; another tenant's is not found (its existence is not disclosed).
fn visible(access: &Access, webhook: &Webhook) -> Result<(), ServiceError> {
    access.sees(webhook).then_some(()).ok_or_else(|| not_found(&webhook.id))
}

impl Service {
    pub async fn list_webhooks(&self, access: &Access) -> Result<Vec<Webhook>, ServiceError> {
        let mut webhooks = self.webhooks.store().list_webhooks().await?;
        webhooks.retain(|w| access.sees(w));
        Ok(webhooks)
    }

    pub async fn webhook(&self, access: &Access, id: &WebhookId) -> Result<Webhook, ServiceError> {
        Ok(self.versioned_webhook(access, id).await?.0)
    }

    /// A webhook with its version (the API's `ETag`).
    pub async fn versioned_webhook(&self, access: &Access, id: &WebhookId) -> Result<(Webhook, Version), ServiceError> {
        let (webhook, version) = self.webhooks.store().get_webhook(id).await?.ok_or_else(|| not_found(id))?;
        visible(access, &webhook)?;
        Ok((webhook, version))
    }

    /// Changes webhook `id` (see `versioned::update`), then reads the webhooks again for routing.
    pub(super) async fn update_webhook(
        &self,
        id: &WebhookId,
        if_match: Option<&[Version]>,
        change: impl FnMut(&Webhook) -> Result<Option<Webhook>, ServiceError> + Send,
    ) -> Result<Updated<Webhook>, ServiceError> {
        let updated = versioned::update(&Webhooks(self.webhooks.store()), id, if_match, change).await?;
        if matches!(updated, Updated::Changed(..)) {
            self.webhooks.changed().await;
        }
        Ok(updated)
    }

    /// Who owns a webhook configured as `config` by `access`: a tenant's credential makes its tenant the owner
    /// (a body naming another is refused); an operator may name any tenant that exists. A tenant's webhook
    /// must hold only attribute values its tenant's grants list (422 otherwise).
    async fn owned(&self, access: &Access, mut config: WebhookConfig) -> Result<WebhookConfig, ServiceError> {
        if let Some(report) = self.unsourced(&config).await? {
            return Err(ServiceError::Invalid { what: Invalid::Webhook, report });
        }
        if let Some(own) = access.tenant() {
            if config.tenant.as_ref().is_some_and(|named| named != own) {
                let report = Report::single("tenant", "is set by your credential: leave it out");
                return Err(ServiceError::WrongTenant(report));
            }
            config.tenant = Some(own.clone());
        }
        let Some(id) = &config.tenant else { return Ok(config) };
        let Some((tenant, _)) = self.tenants.get_tenant(id).await? else {
            return Err(ServiceError::WrongTenant(Report::single("tenant", format!("there is no tenant \"{id}\""))));
        };
        let mut problems: Vec<Problem> = config
            .attributes
            .iter()
            .filter(|(attribute, value)| !tenant.grants(attribute, value))
            .map(|(attribute, value)| {
                Problem::new(
                    join("attributes", attribute),
                    format!("{value:?} is not granted to tenant \"{id}\" (its grants list the values its webhooks may hold)"),
                )
            })
            .collect();
        // What providers send the operator's sources is no tenant's: grants say nothing about a provider's body.
        let received = config.subscriptions.iter().enumerate().filter(|(_, s)| received::is_received(s));
        problems.extend(received.map(|(i, name)| {
            Problem::new(
                format!("subscriptions[{i}]"),
                format!("{name:?} is a source's event: those are the operator's"),
            )
        }));
        match Report::of(problems) {
            Some(report) => Err(ServiceError::Ungranted(report)),
            None => Ok(config),
        }
    }

    /// The subscriptions in a namespace of the catalog's events that no source holds (`profile:completedd`: a
    /// catalog event mistyped, not a source's event); 422, as only the stored sources tell.
    async fn unsourced(&self, config: &WebhookConfig) -> Result<Option<Report>, ServiceError> {
        let mut problems = Vec::new();
        for (i, subscription) in config.subscriptions.iter().enumerate() {
            let received = received::is_received(subscription);
            let Some(namespace) = received::catalog_namespace(subscription).filter(|_| received) else { continue };
            if self.sources_store.get_source(namespace).await?.is_none() {
                problems.push(Problem::unprocessable(
                    format!("subscriptions[{i}]"),
                    format!("{subscription:?} is no event of the catalog, and no source is named {namespace:?}"),
                ));
            }
        }
        Ok(Report::of(problems))
    }

    /// Registers a webhook from a registration body (which may name its id); the answer holds its secret. A
    /// tenant's registration past its `maxWebhooks` is a conflict.
    pub async fn create_webhook(&self, access: &Access, body: &Value) -> Result<Webhook, ServiceError> {
        require_writable(access)?;
        let (id, config) =
            decode_registration(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        // A tenant's webhook gets an id nobody chose: one reused after another tenant deleted it would inherit
        // that webhook's deliveries, and a taken one would tell that it exists.
        if id.is_some() && access.tenant().is_some() {
            let report = Report::single("id", "is made by the dispatcher for a tenant's webhook: leave it out");
            return Err(ServiceError::WrongTenant(report));
        }
        let config = self.owned(access, config).await?;
        // One tenant registration at a time in this process, so that a burst cannot pass the count below all
        // at once; across Azure instances each may still let one through.
        let counting = match &config.tenant {
            Some(tenant) => {
                let guard = self.registering.lock().await;
                self.check_room(tenant).await?;
                Some(guard)
            }
            None => None,
        };
        let id = match id {
            Some(id) => id,
            None => self.random_id("wh_")?,
        };
        let webhook = Webhook::new(id.into(), config, self.new_secret()?, self.clock.now_ms());
        // An id taken meanwhile is a conflict of the store, answered 409 like the one above.
        self.webhooks.store().put_webhook(&webhook, None).await?;
        if let Some(tenant) = &webhook.config.tenant {
            // The tenant was deleted while this was written: its delete may have listed its webhooks before
            // this one, so take it back rather than leave it for a tenant created later under the same id.
            if self.tenants.get_tenant(tenant).await?.is_none() {
                self.webhooks.store().delete_webhook(&webhook.id).await?;
                let report = Report::single("tenant", format!("there is no tenant \"{tenant}\""));
                return Err(ServiceError::WrongTenant(report));
            }
        }
        // Counted and written: the next registration may count (the reload below need not hold it up).
        drop(counting);
        self.webhooks.changed().await;
        self.audit(access, "webhook.create", webhook.id.as_str());
        Ok(webhook)
    }

    /// Refuses a new webhook of `tenant` when it holds its `maxWebhooks` already. (Registrations on two
    /// instances at once may both pass: the limit is a quota, not a security boundary.)
    async fn check_room(&self, tenant: &TenantId) -> Result<(), ServiceError> {
        let Some((tenant, _)) = self.tenants.get_tenant(tenant).await? else { return Ok(()) };
        let webhooks = self.webhooks.store().list_webhooks().await?;
        let held = webhooks.iter().filter(|w| w.config.tenant.as_ref() == Some(&tenant.id)).count();
        if held >= tenant.config.max_webhooks as usize {
            return Err(ServiceError::Conflict(format!(
                "tenant \"{}\" holds {held} webhooks, its limit (maxWebhooks: {}): delete one first",
                tenant.id, tenant.config.max_webhooks
            )));
        }
        Ok(())
    }

    /// Replaces a webhook's configuration.
    pub async fn replace_webhook(
        &self,
        access: &Access,
        id: &WebhookId,
        body: &Value,
        if_match: Option<&[Version]>,
    ) -> Result<(Webhook, Version), ServiceError> {
        require_writable(access)?;
        let config =
            WebhookConfig::decode(body).map_err(|report| ServiceError::Invalid { what: Invalid::Webhook, report })?;
        let (current, _) = self.versioned_webhook(access, id).await?;
        let config = self.owned(access, config).await?;
        let owner = current.config.tenant;
        let replaced = self.reconfigure(access, id, if_match, owner, |_| Ok(config.clone())).await?;
        self.audit(access, "webhook.replace", id.as_str());
        Ok(replaced)
    }

    /// Changes some fields of a webhook's configuration (RFC 7396 JSON merge patch), applied to the webhook as
    /// stored when it is written: fields the patch leaves out keep what others wrote meanwhile.
    pub async fn patch_webhook(
        &self,
        access: &Access,
        id: &WebhookId,
        patch: &Value,
        if_match: Option<&[Version]>,
    ) -> Result<(Webhook, Version), ServiceError> {
        require_writable(access)?;
        let (current, _) = self.versioned_webhook(access, id).await?;
        // The owner and the grants are checked on the patched webhook as read now: a change of owner before the
        // write is refused (`reconfigure`), a change of grants is caught by routing, which checks them again.
        let patched = merged(&current.config, patch)?;
        let owned = self.owned(access, patched).await?;
        let tenant = owned.tenant.clone();
        let patched = self
            .reconfigure(access, id, if_match, current.config.tenant.clone(), |webhook| {
                let config = merged(&webhook.config, patch)?;
                Ok(WebhookConfig { tenant: tenant.clone(), ..config })
            })
            .await?;
        self.audit(access, "webhook.patch", id.as_str());
        Ok(patched)
    }

    /// Gives webhook `id` the configuration `config_of` makes from it as stored (see `update_webhook`), when
    /// `access` sees it. `owner`: who owned it when the new configuration's owner and grants were checked; a webhook that changed
    /// owner since is not changed (a conflict: the client asks again).
    async fn reconfigure(
        &self,
        access: &Access,
        id: &WebhookId,
        if_match: Option<&[Version]>,
        owner: Option<TenantId>,
        config_of: impl Fn(&Webhook) -> Result<WebhookConfig, ServiceError> + Send + Sync,
    ) -> Result<(Webhook, Version), ServiceError> {
        let now_ms = self.clock.now_ms();
        let changed = self.update_webhook(id, if_match, |webhook| {
            visible(access, webhook)?;
            if owner != webhook.config.tenant {
                return Err(ServiceError::Conflict(format!("webhook \"{id}\" changed owner meanwhile: try again")));
            }
            Ok(Some(webhook.reconfigured(config_of(webhook)?, now_ms)))
        });
        changed.await?.found(|| not_found(id))
    }

    /// Deletes a webhook; its deliveries still queued end dead when their turn comes.
    pub async fn delete_webhook(&self, access: &Access, id: &WebhookId) -> Result<(), ServiceError> {
        require_writable(access)?;
        self.versioned_webhook(access, id).await?;
        if !self.webhooks.store().delete_webhook(id).await? {
            return Err(not_found(id));
        }
        self.webhooks.changed().await;
        self.audit(access, "webhook.delete", id.as_str());
        Ok(())
    }

    /// A new signing secret; the current one keeps signing for 24 hours.
    pub async fn rotate_secret(&self, access: &Access, id: &WebhookId) -> Result<Webhook, ServiceError> {
        require_writable(access)?;
        let (fresh, now_ms) = (self.new_secret()?, self.clock.now_ms());
        // A retry of a write that went through finds the new secret there already: rotated once.
        let rotate = |webhook: &Webhook| {
            visible(access, webhook)?;
            Ok((webhook.secret != fresh).then(|| webhook.rotated(fresh.clone(), now_ms)))
        };
        let rotated = self.update_webhook(id, None, rotate).await?.found(|| not_found(id))?.0;
        self.audit(access, "webhook.rotate-secret", id.as_str());
        Ok(rotated)
    }

    /// Queues `{"name":"ping","payload":{}}` for this webhook now, outside routing; returns the delivery's id.
    pub async fn ping(&self, access: &Access, id: &WebhookId) -> Result<DeliveryId, ServiceError> {
        require_writable(access)?;
        let webhook = self.webhook(access, id).await?;
        let source = Source { id: self.random_id("evt_")?, correlation_id: None, traceparent: None };
        let delivery = dispatch::direct(&source, &webhook.id, "ping", r#"{"name":"ping","payload":{}}"#.to_owned());
        let delivery_id = delivery.id;
        self.submit(vec![delivery], &*self.queue).await?;
        self.audit(access, "webhook.ping", webhook.id.as_str());
        Ok(delivery_id)
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
        for (i, (_, config)) in decoded.iter().enumerate() {
            if let Some(report) = self.unsourced(config).await? {
                problems.push(format!("[{i}]: {report}"));
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

/// `config` with `patch` merged into it (RFC 7396, but for the fields it replaces whole:
/// [`WebhookConfig::REPLACED_WHOLE`]), decoded again.
fn merged(config: &WebhookConfig, patch: &Value) -> Result<WebhookConfig, ServiceError> {
    WebhookConfig::check_patch(patch)
        .map_err(|report| ServiceError::Invalid { what: Invalid::PatchedWebhook, report })?;
    let mut merged = serde_json::to_value(config).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut rest = patch.clone();
    if let (Some(fields), Some(target)) = (rest.as_object_mut(), merged.as_object_mut()) {
        for name in WebhookConfig::REPLACED_WHOLE {
            match fields.remove(name) {
                Some(Value::Null) => {
                    target.remove(name);
                }
                Some(whole) => {
                    target.insert(name.to_owned(), whole);
                }
                None => {}
            }
        }
    }
    json_patch::merge(&mut merged, &rest);
    WebhookConfig::decode(&merged).map_err(|report| ServiceError::Invalid { what: Invalid::PatchedWebhook, report })
}
