//! Managing tenants (operator only): create, read, replace, patch (JSON merge patch), delete (with their
//! webhooks when asked), and their credentials: API tokens and the short-lived tokens of portal links, each
//! shown once and kept only as a hash.

use super::access::require_operator;
use super::versioned::{self, Tenants, Updated};
use super::{Invalid, Service, ServiceError};
use crate::ports::Version;
use dispatcher_core::model::{Access, Tenant, TenantConfig, TenantId, Token, Webhook};
use dispatcher_core::tenants::registration::{
    decode_portal_link_request, decode_tenant, decode_token_request, CredentialRequest,
};
use dispatcher_core::tenants::tokens::{self, Spec};
use serde_json::Value;

/// A credential as issued: its record, and the token, which is shown this once (never in a debug print).
pub struct IssuedCredential {
    pub record: Token,
    pub token: String,
}

impl std::fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential").field("record", &self.record).field("token", &"<secret>").finish()
    }
}

fn not_found(id: &TenantId) -> ServiceError {
    ServiceError::NotFound { what: "tenant", id: id.to_string() }
}

const MANAGING_TENANTS: &str = "managing tenants and their credentials";

impl Service {
    pub async fn list_tenants(&self, access: &Access) -> Result<Vec<Tenant>, ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        Ok(self.tenants.list_tenants().await?)
    }

    pub async fn tenant(&self, access: &Access, id: &TenantId) -> Result<(Tenant, Version), ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        self.tenants.get_tenant(id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn create_tenant(&self, access: &Access, body: &Value) -> Result<(Tenant, Version), ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        let (id, config) =
            decode_tenant(body).map_err(|report| ServiceError::Invalid { what: Invalid::Tenant, report })?;
        let id = match id {
            Some(id) => id,
            None => self.random_id("tn_")?,
        };
        let now_ms = self.clock.now_ms();
        let tenant = Tenant { id: id.into(), config, created_at_ms: now_ms, updated_at_ms: now_ms };
        let version = self.tenants.put_tenant(&tenant, None).await?;
        self.webhooks.changed().await;
        self.audit(access, "tenant.create", tenant.id.as_str());
        Ok((tenant, version))
    }

    pub async fn replace_tenant(
        &self,
        access: &Access,
        id: &TenantId,
        body: &Value,
        if_match: Option<&[Version]>,
    ) -> Result<(Tenant, Version), ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        let config =
            TenantConfig::decode(body).map_err(|report| ServiceError::Invalid { what: Invalid::Tenant, report })?;
        let replaced = self.reconfigure_tenant(id, if_match, |_| Ok(config.clone())).await?;
        self.audit(access, "tenant.replace", id.as_str());
        Ok(replaced)
    }

    /// Changes some fields (RFC 7396 JSON merge patch), applied to the tenant as stored when it is written.
    pub async fn patch_tenant(
        &self,
        access: &Access,
        id: &TenantId,
        patch: &Value,
        if_match: Option<&[Version]>,
    ) -> Result<(Tenant, Version), ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        TenantConfig::check_patch(patch)
            .map_err(|report| ServiceError::Invalid { what: Invalid::PatchedTenant, report })?;
        let patched = self
            .reconfigure_tenant(id, if_match, |tenant| {
                let mut merged =
                    serde_json::to_value(&tenant.config).map_err(|e| ServiceError::Internal(e.to_string()))?;
                json_patch::merge(&mut merged, patch);
                TenantConfig::decode(&merged)
                    .map_err(|report| ServiceError::Invalid { what: Invalid::PatchedTenant, report })
            })
            .await?;
        self.audit(access, "tenant.patch", id.as_str());
        Ok(patched)
    }

    /// Gives tenant `id` the configuration `config_of` makes from it as stored, then reads the webhooks and
    /// tenants again: a narrowed grant stops routing before the answer.
    async fn reconfigure_tenant(
        &self,
        id: &TenantId,
        if_match: Option<&[Version]>,
        config_of: impl Fn(&Tenant) -> Result<TenantConfig, ServiceError> + Send + Sync,
    ) -> Result<(Tenant, Version), ServiceError> {
        let now_ms = self.clock.now_ms();
        let change =
            |tenant: &Tenant| Ok(Some(Tenant { config: config_of(tenant)?, updated_at_ms: now_ms, ..tenant.clone() }));
        let updated = versioned::update(&Tenants(&*self.tenants), id, if_match, change).await?;
        if matches!(updated, Updated::Changed(..)) {
            self.webhooks.changed().await;
        }
        updated.found(|| not_found(id))
    }

    /// Deletes a tenant and its tokens; one that still owns webhooks only with `cascade`, which deletes them.
    pub async fn delete_tenant(&self, access: &Access, id: &TenantId, cascade: bool) -> Result<(), ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        let exists = self.tenants.get_tenant(id).await?.is_some();
        let owned = self.owned_by(id).await?;
        if !exists {
            // A delete cut short (a store error, shutdown) left webhooks of a tenant that is gone: `?cascade=true`
            // takes them away, before a tenant created under the same id would own them.
            if !cascade || owned.is_empty() {
                return Err(not_found(id));
            }
            self.delete_owned(access, owned).await?;
            return Ok(());
        }
        if !owned.is_empty() && !cascade {
            return Err(ServiceError::Conflict(format!(
                "tenant \"{id}\" still owns {} webhooks: delete them first, or ask for ?cascade=true",
                owned.len()
            )));
        }
        // The tenant goes first: a registration racing this delete then either lands before the list below, or
        // finds no tenant after its write and takes it back (`create_webhook`).
        if !self.tenants.delete_tenant(id).await? {
            return Err(not_found(id));
        }
        self.tokens.forget(|token| &token.tenant == id);
        self.delete_owned(access, self.owned_by(id).await?).await?;
        self.audit(access, "tenant.delete", id.as_str());
        Ok(())
    }

    async fn delete_owned(&self, access: &Access, owned: Vec<Webhook>) -> Result<(), ServiceError> {
        for webhook in owned {
            self.webhooks.store().delete_webhook(&webhook.id).await?;
            self.audit(access, "webhook.delete", webhook.id.as_str());
        }
        self.webhooks.changed().await;
        Ok(())
    }

    async fn owned_by(&self, id: &TenantId) -> Result<Vec<Webhook>, ServiceError> {
        let webhooks = self.webhooks.store().list_webhooks().await?;
        Ok(webhooks.into_iter().filter(|w| w.config.tenant.as_ref() == Some(id)).collect())
    }

    /// Issues an API token for tenant `id` (`{"name", "expiresIn", "readOnly"}`).
    pub async fn create_token(
        &self,
        access: &Access,
        id: &TenantId,
        body: &Value,
    ) -> Result<IssuedCredential, ServiceError> {
        let request =
            decode_token_request(body).map_err(|report| ServiceError::Invalid { what: Invalid::Credential, report })?;
        self.issue(access, id, request, false, "token.create").await
    }

    /// Issues the short-lived token of a portal link for tenant `id` (`{"expiresIn", "readOnly"}`).
    pub async fn create_portal_link(
        &self,
        access: &Access,
        id: &TenantId,
        body: &Value,
    ) -> Result<IssuedCredential, ServiceError> {
        let request = decode_portal_link_request(body)
            .map_err(|report| ServiceError::Invalid { what: Invalid::Credential, report })?;
        self.issue(access, id, request, true, "portal-link.create").await
    }

    async fn issue(
        &self,
        access: &Access,
        id: &TenantId,
        request: CredentialRequest,
        portal: bool,
        action: &'static str,
    ) -> Result<IssuedCredential, ServiceError> {
        require_operator(access, MANAGING_TENANTS)?;
        if !self.operator_key {
            return Err(ServiceError::Conflict(
                "a tenant's credential needs an operator key (DISPATCHER_API_KEY): without one, every caller is the \
                 operator, whatever token it holds"
                    .to_owned(),
            ));
        }
        let (tenant, _) = self.tenant(access, id).await?;
        let mut random = [0u8; tokens::RANDOM_BYTES];
        self.clock.fill_random(&mut random)?;
        let now_ms = self.clock.now_ms();
        let spec = Spec {
            tenant: id.clone(),
            tenant_created_at_ms: tenant.created_at_ms,
            name: request.name,
            read_only: request.read_only,
            portal,
            now_ms,
            expires_at_ms: now_ms.saturating_add(request.expires_in.as_millis() as i64),
        };
        let issued = tokens::issue(spec, &random);
        self.tenants.put_token(&issued.record).await?;
        self.audit(access, action, issued.record.id.as_str());
        Ok(IssuedCredential { record: issued.record, token: issued.token })
    }

    /// A tenant's tokens and portal links that have not expired, without their secrets.
    pub async fn tokens(&self, access: &Access, id: &TenantId) -> Result<Vec<Token>, ServiceError> {
        self.tenant(access, id).await?;
        Ok(self.tenants.list_tokens(id, self.clock.now_ms()).await?)
    }

    /// Revokes a token of tenant `id`: refused at once by this process, by others within their cache's age.
    pub async fn revoke_token(&self, access: &Access, id: &TenantId, token_id: &str) -> Result<(), ServiceError> {
        self.tenant(access, id).await?;
        if !self.tenants.delete_token(id, token_id).await? {
            return Err(ServiceError::NotFound { what: "token", id: token_id.to_owned() });
        }
        self.tokens.forget(|token| token.id == token_id);
        self.audit(access, "token.revoke", token_id);
        Ok(())
    }
}
