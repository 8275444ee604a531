//! Who is calling: a tenant's bearer token verified (`authenticate`), what each kind of caller may do
//! (`require_operator`, `require_writable`), and the audit log of every change made through the API.
//!
//! Token records are cached: a presented token costs no store read while its record is fresh. Locally this
//! process makes every change, so a revocation takes effect at once; on Azure another instance may accept a
//! revoked token until its copy is as old as the webhooks' cache (`DISPATCHER_WEBHOOK_CACHE_SECONDS`, default
//! 10 s), and never past [`TOKEN_CACHE_MAX_AGE`].

use super::{Service, ServiceError};
use dispatcher_core::model::{Access, TenantAccess, Token};
use dispatcher_core::tenants::tokens::{self, Refused};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a token record read from the store is used on Azure before it is read again: the bound on how
/// long a revoked token keeps working on another instance.
pub const TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(60);

/// The most token records kept; past it the cache starts over (a flood of made-up token ids cannot grow it).
const MAX_CACHED: usize = 10_000;

/// A token record as last read (`None`: there was none), and when.
type Cached = (Instant, Option<Arc<Token>>);

/// Token records by id.
pub struct TokenCache {
    max_age: Option<Duration>,
    entries: Mutex<HashMap<String, Cached>>,
    /// Counts what this process revoked: a record read before a revocation is not kept after it.
    revocations: std::sync::atomic::AtomicU64,
}

impl TokenCache {
    /// `max_age` `None`: records are used until this process changes them (local mode).
    pub fn new(max_age: Option<Duration>) -> TokenCache {
        TokenCache { max_age, entries: Mutex::default(), revocations: Default::default() }
    }

    fn revocations(&self) -> u64 {
        self.revocations.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn fresh(&self, id: &str) -> Option<Option<Arc<Token>>> {
        let entries = self.entries.lock().ok()?;
        let (read_at, token) = entries.get(id)?;
        self.max_age.is_none_or(|max| read_at.elapsed() < max).then(|| token.clone())
    }

    /// Keeps a record read when `revocations` was the count: not when a revocation came in between.
    fn keep(&self, id: String, token: Option<Arc<Token>>, revocations: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if self.revocations() != revocations {
                return;
            }
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
            entries.insert(id, (Instant::now(), token));
        }
    }

    /// Forgets records: after this process revoked a token or deleted a tenant.
    pub(super) fn forget(&self, which: impl Fn(&Token) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            self.revocations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            entries.retain(|_, (_, token)| !token.as_deref().is_some_and(&which));
        }
    }
}

impl Service {
    /// A refused credential, counted by why, as the API answers it (401).
    fn refused(&self, reason: Refused) -> ServiceError {
        self.metrics.refused(reason.label());
        ServiceError::Unauthorized(reason.to_string())
    }

    /// Verifies a tenant's bearer token: its shape, its record, its hash (in constant time), its expiry, and
    /// that its tenant exists and is enabled (403 when it is not).
    pub async fn authenticate(&self, presented: &str) -> Result<Access, ServiceError> {
        let id = tokens::claimed_id(presented).ok_or_else(|| self.refused(Refused::Malformed))?;
        let record = match self.tokens.fresh(&id) {
            Some(record) => record,
            None => {
                let revocations = self.tokens.revocations();
                let record = self.tenants.get_token(&id).await?.map(Arc::new);
                self.tokens.keep(id, record.clone(), revocations);
                record
            }
        };
        tokens::verify(presented, record.as_deref(), self.clock.now_ms()).map_err(|reason| self.refused(reason))?;
        let token = record.ok_or_else(|| self.refused(Refused::Unknown))?;
        // The tenants routing knows; one created since (on another instance) is read from the store.
        let tenant = match self.webhooks.get().await?.tenant(&token.tenant) {
            Some(tenant) => Some(tenant.clone()),
            None => self.tenants.get_tenant(&token.tenant).await?.map(|(tenant, _)| Arc::new(tenant)),
        };
        match tenant {
            // A token of a deleted tenant whose id was given again to a new one opens nothing.
            None => Err(self.refused(Refused::Unknown)),
            Some(tenant) if !token.issued_for(&tenant) => Err(self.refused(Refused::Unknown)),
            Some(tenant) if tenant.config.disabled => {
                self.metrics.refused("disabled");
                Err(ServiceError::Forbidden(format!("tenant {:?} is disabled: ask the operator", tenant.id.as_str())))
            }
            Some(_) => Ok(Access::Tenant(TenantAccess {
                tenant: token.tenant.clone(),
                token_id: token.id.clone(),
                read_only: token.read_only,
            })),
        }
    }

    /// Logs and counts a change made through the API: who, what, which id; never a secret.
    pub(super) fn audit(&self, access: &Access, action: &'static str, id: &str) {
        let by = match access {
            Access::Operator => "operator",
            Access::Tenant(_) => "tenant",
        };
        tracing::info!(target: "audit", who = %access, action, id, "changed");
        self.metrics.change(by, action);
    }
}

/// Refuses a tenant's credential for what only the operator may do (`what`: "publishing events").
pub fn require_operator(access: &Access, what: &str) -> Result<(), ServiceError> {
    match access {
        Access::Operator => Ok(()),
        Access::Tenant(_) => {
            Err(ServiceError::Forbidden(format!("{what} is for the operator's key only, not a tenant's credential")))
        }
    }
}

/// Refuses a read-only credential for a change.
pub(super) fn require_writable(access: &Access) -> Result<(), ServiceError> {
    match access.read_only() {
        false => Ok(()),
        true => Err(ServiceError::Forbidden("this credential is read-only: it cannot change anything".to_owned())),
    }
}
