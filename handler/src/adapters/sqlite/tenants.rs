//! The tenants (a table of versioned documents, as the webhooks: `records.rs`) and their tokens.

use super::records::TENANTS;
use super::schema::storage;
use super::SqliteStore;
use crate::ports::{StoreError, TenantStore, Version};
use async_trait::async_trait;
use dispatcher_core::model::{Tenant, TenantId, Token};
use rusqlite::{params, OptionalExtension};

fn parse<T: serde::de::DeserializeOwned>(what: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(format!("{what} document: {e}")))
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn put_tenant(&self, tenant: &Tenant, expected: Option<&Version>) -> Result<Version, StoreError> {
        self.put_document(TENANTS, tenant.id.to_string(), tenant, expected).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<(Tenant, Version)>, StoreError> {
        self.get_document(TENANTS, id.to_string()).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.list_documents(TENANTS).await
    }

    async fn delete_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM tokens WHERE tenant_id = ?1", [id.as_str()]).map_err(storage)?;
            Ok(c.execute("DELETE FROM tenants WHERE id = ?1", [id.as_str()]).map_err(storage)? > 0)
        })
        .await
    }

    async fn put_token(&self, token: &Token) -> Result<(), StoreError> {
        let doc = serde_json::to_string(token).map_err(storage)?;
        let (id, tenant, expires_at) = (token.id.clone(), token.tenant.to_string(), token.expires_at_ms);
        let named = id.clone();
        let written = self
            .write(move |c| {
                let written = c.execute(
                    // Only for a tenant that still exists: a token written after its tenant's delete would wait
                    // for a tenant of the same id.
                    "INSERT INTO tokens (id, tenant_id, doc, expires_at) SELECT ?1, ?2, ?3, ?4 \
                     WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?2) ON CONFLICT(id) DO NOTHING",
                    params![id, tenant, doc, expires_at],
                );
                Ok(written.map_err(storage)? > 0)
            })
            .await?;
        written.then_some(()).ok_or_else(|| {
            StoreError::Conflict(format!("token {named:?} was not stored: its id is taken or its tenant is gone"))
        })
    }

    async fn get_token(&self, id: &str) -> Result<Option<Token>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM tokens WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            doc.map(|doc| parse("token", &doc)).transpose()
        })
        .await
    }

    async fn list_tokens(&self, tenant: &TenantId, now_ms: i64) -> Result<Vec<Token>, StoreError> {
        let tenant = tenant.to_owned();
        self.read(move |c| {
            let mut statement = c
                .prepare_cached("SELECT doc FROM tokens WHERE tenant_id = ?1 AND expires_at > ?2 ORDER BY rowid")
                .map_err(storage)?;
            let docs =
                statement.query_map(params![tenant.as_str(), now_ms], |r| r.get::<_, String>(0)).map_err(storage)?;
            docs.map(|doc| parse("token", &doc.map_err(storage)?)).collect()
        })
        .await
    }

    async fn delete_token(&self, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.write(move |c| {
            let deleted =
                c.execute("DELETE FROM tokens WHERE id = ?1 AND tenant_id = ?2", [id.as_str(), tenant.as_str()]);
            Ok(deleted.map_err(storage)? > 0)
        })
        .await
    }
}
