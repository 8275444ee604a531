//! Changing a stored item (a webhook, a tenant) without losing a change made at the same time: read it, apply
//! the change, write it only if it is still the version read; otherwise read it again and apply the change
//! again. With `If-Match` (the versions an API client names), an item of another version is not changed.

use super::ServiceError;
use crate::ports::{StoreError, TenantStore, Version, WebhookStore};
use async_trait::async_trait;
use dispatcher_core::model::{Tenant, TenantId, Webhook, WebhookId};

/// How often a change is made again from a fresh read when others keep changing the item first.
const UPDATE_TRIES: usize = 16;

/// A store of versioned items, as [`update`] needs it.
#[async_trait]
pub(super) trait Versioned: Send + Sync {
    type Id: std::fmt::Display + Send + Sync + ?Sized;
    type Item: Send + Sync;
    /// What an item is, in messages ("webhook").
    const WHAT: &'static str;
    async fn read(&self, id: &Self::Id) -> Result<Option<(Self::Item, Version)>, StoreError>;
    async fn write(&self, item: &Self::Item, expected: &Version) -> Result<Version, StoreError>;
}

pub(super) struct Webhooks<'a>(pub &'a dyn WebhookStore);
pub(super) struct Tenants<'a>(pub &'a dyn TenantStore);

#[async_trait]
impl Versioned for Webhooks<'_> {
    type Id = WebhookId;
    type Item = Webhook;
    const WHAT: &'static str = "webhook";

    async fn read(&self, id: &WebhookId) -> Result<Option<(Webhook, Version)>, StoreError> {
        self.0.get_webhook(id).await
    }

    async fn write(&self, item: &Webhook, expected: &Version) -> Result<Version, StoreError> {
        self.0.put_webhook(item, Some(expected)).await
    }
}

#[async_trait]
impl Versioned for Tenants<'_> {
    type Id = TenantId;
    type Item = Tenant;
    const WHAT: &'static str = "tenant";

    async fn read(&self, id: &TenantId) -> Result<Option<(Tenant, Version)>, StoreError> {
        self.0.get_tenant(id).await
    }

    async fn write(&self, item: &Tenant, expected: &Version) -> Result<Version, StoreError> {
        self.0.put_tenant(item, Some(expected)).await
    }
}

/// What [`update`] did.
#[derive(Debug)]
pub(super) enum Updated<T> {
    /// The change was written: the item as it is now, and its new version.
    Changed(T, Version),
    /// The change left the item as it was.
    Unchanged(T, Version),
    /// There is no such item.
    Missing,
}

impl<T> Updated<T> {
    /// The item as it is now; `not_found` when there is none.
    pub(super) fn found(self, not_found: impl FnOnce() -> ServiceError) -> Result<(T, Version), ServiceError> {
        match self {
            Updated::Changed(item, version) | Updated::Unchanged(item, version) => Ok((item, version)),
            Updated::Missing => Err(not_found()),
        }
    }
}

/// Changes item `id`: `change` gets it as stored now and gives its new value (or `None` to leave it as it
/// is), written only if the item is still the one read; otherwise it is read again and `change` applied
/// again, so two changes made at once both survive.
pub(super) async fn update<S: Versioned>(
    store: &S,
    id: &S::Id,
    if_match: Option<&[Version]>,
    mut change: impl FnMut(&S::Item) -> Result<Option<S::Item>, ServiceError> + Send,
) -> Result<Updated<S::Item>, ServiceError> {
    for _ in 0..UPDATE_TRIES {
        let Some((current, version)) = store.read(id).await? else { return Ok(Updated::Missing) };
        // The change first: an invalid one is refused as such (400) whatever If-Match says.
        let changed = change(&current)?;
        if if_match.is_some_and(|expected| !expected.contains(&version)) {
            return Err(ServiceError::PreconditionFailed(format!(
                "{} \"{id}\" is not the version If-Match names (it changed since, or If-Match names none this \
                 server gave out): read it again (its ETag) and retry",
                S::WHAT
            )));
        }
        let Some(changed) = changed else { return Ok(Updated::Unchanged(current, version)) };
        match store.write(&changed, &version).await {
            Ok(written) => return Ok(Updated::Changed(changed, written)),
            Err(StoreError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ServiceError::Conflict(format!("{} \"{id}\" kept changing while this change was made: try again", S::WHAT)))
}
