//! The domain types, once: a webhook, a tenant with its tokens and what a caller may do, a delivery with its status and attempts, a rejected event, and their ids.
//! Plain data with its invariants; every other module of the dispatcher speaks in these types, and the stores
//! keep them as they serialize.

mod auth;
mod delivery;
mod ids;
mod kind;
mod problem;
mod rejected;
mod secret;
mod tenant;
mod webhook;

pub use auth::{ClientCertificate, OAuth2Client, TargetAuth};
pub use delivery::{
    Attempt, Delivery, DeliveryCounts, Job, LogEntry, LogVersion, Next, Status, Unsent, RESPONSE_LOGGED,
};
pub use ids::{DeliveryId, TenantId, WebhookId};
pub use kind::CallbackType;
pub use problem::{
    join, kind_of, optional_string, quote, unknown_keys, unknown_patch_keys, up_to, whole, wrong_type, Problem, Report,
};
pub use rejected::Rejected;
pub use secret::Secret;
pub use tenant::{blocked, Access, Tenant, TenantAccess, TenantConfig, Token, DEFAULT_MAX_WEBHOOKS, FREE_ATTRIBUTE};
pub use webhook::{PreviousSecret, Webhook, WebhookConfig, SECRET_OVERLAP_MS};
