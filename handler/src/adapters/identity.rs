//! The app's managed identity, through `azure_identity`: on a Functions worker, tokens come from the App
//! Service identity endpoint (`IDENTITY_ENDPOINT`, with the secret `IDENTITY_HEADER`), which the platform sets.
//! Cosmos DB (data-plane RBAC) and Service Bus (Data Sender) take its tokens instead of keys. A token is a
//! secret: it is held as `azure_core`'s `Secret`, whose `Debug` hides it, and never logged.

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use std::sync::Arc;

/// What the managed identity could not do: the Azure SDK's words, never a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(String);

/// The system-assigned identity, or the user-assigned one of `client_id`.
#[derive(Clone)]
pub struct ManagedIdentity {
    client_id: Option<String>,
    credential: Arc<dyn TokenCredential>,
}

impl ManagedIdentity {
    /// The identity; nothing is requested until a token is.
    pub fn new(client_id: Option<String>) -> Result<ManagedIdentity, IdentityError> {
        // The credential builds its HTTP client now, on the process's TLS stack.
        crate::adapters::tls::install();
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
            ..Default::default()
        };
        let credential = ManagedIdentityCredential::new(Some(options))
            .map_err(|e| IdentityError(format!("no managed identity: {e}")))?;
        Ok(ManagedIdentity { client_id, credential })
    }

    /// What the Azure SDK's clients take.
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        self.credential.clone()
    }

    /// A token for `scope` (cached by the credential until shortly before it expires); the error says what the
    /// identity endpoint answered, never a token.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        self.credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| IdentityError(format!("no token from the managed identity ({self:?}) for {scope}: {e}")))
    }
}

impl std::fmt::Debug for ManagedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.client_id {
            Some(id) => write!(f, "user-assigned, client id {id}"),
            None => f.write_str("system-assigned"),
        }
    }
}

impl PartialEq for ManagedIdentity {
    fn eq(&self, other: &ManagedIdentity) -> bool {
        self.client_id == other.client_id
    }
}

impl Eq for ManagedIdentity {}
