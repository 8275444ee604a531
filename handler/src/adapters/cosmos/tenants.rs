//! The tenants (one item each, the tenant whole under `tenant`, versioned by its etag like the webhooks) and
//! their tokens (one item each, the token's id as the item's: a presented token is one point read).

use super::query::{parameter, query_all};
use super::records::{delete_point, get_versioned, put_versioned};
use super::throttle::{unthrottled, BUDGET};
use super::{cosmos, CosmosStore};
use crate::ports::{StoreError, TenantStore, Version};
use async_trait::async_trait;
use azure_data_cosmos::{FeedScope, Query};
use dispatcher_core::model::{Tenant, TenantId, Token};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct TenantDoc {
    id: String,
    tenant: Tenant,
}

#[async_trait]
impl TenantStore for CosmosStore {
    async fn put_tenant(&self, tenant: &Tenant, expected: Option<&Version>) -> Result<Version, StoreError> {
        let doc = TenantDoc { id: tenant.id.to_string(), tenant: tenant.clone() };
        put_versioned(&self.containers().await?.tenants, &doc.id, &doc, expected, "tenant").await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, Version)>, StoreError> {
        let doc = get_versioned::<TenantDoc>(&self.containers().await?.tenants, id.as_str(), "tenant").await?;
        Ok(doc.map(|(doc, version)| (doc.tenant, version)))
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let container = &self.containers().await?.tenants;
        let docs: Vec<TenantDoc> =
            query_all(container, Query::from("SELECT * FROM c"), FeedScope::full_container(), "listing tenants")
                .await?;
        let mut tenants: Vec<Tenant> = docs.into_iter().map(|d| d.tenant).collect();
        tenants.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(tenants)
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        // Its tokens first: a tenant left without its tokens is harmless, tokens left without their tenant
        // are refused anyway (their tenant is not found).
        for token in self.list_tokens(id, i64::MIN).await? {
            self.delete_token(id, &token.id).await?;
        }
        delete_point(&self.containers().await?.tenants, id.as_str(), "tenant").await
    }

    async fn put_token(&self, token: &Token) -> Result<(), StoreError> {
        let container = &self.containers().await?.tokens;
        let create = || container.create_item(token.id.clone(), &token.id, token, None);
        match unthrottled("creating a token", BUDGET, create).await {
            Ok(_) => Ok(()),
            Err(error) if error.status().is_conflict() => {
                Err(StoreError::Conflict(format!("token {:?} already exists", token.id)))
            }
            Err(error) => Err(cosmos("creating a token")(error)),
        }
    }

    async fn get_token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        Ok(get_versioned::<Token>(&self.containers().await?.tokens, id, "token").await?.map(|(token, _)| token))
    }

    async fn list_tokens(&self, tenant: &TenantId, now_ms: i64) -> Result<Vec<Token>, StoreError> {
        let query = Query::from("SELECT * FROM c WHERE c.tenant = @tenant AND c.expiresAtMs > @now");
        let query = parameter(parameter(query, "@tenant", tenant.as_str())?, "@now", now_ms)?;
        let container = &self.containers().await?.tokens;
        let mut tokens: Vec<Token> = query_all(container, query, FeedScope::full_container(), "listing tokens").await?;
        tokens.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(tokens)
    }

    async fn delete_token(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        match self.get_token(id).await? {
            Some(token) if &token.tenant == tenant => delete_point(&self.containers().await?.tokens, id, "token").await,
            _ => Ok(false),
        }
    }
}
