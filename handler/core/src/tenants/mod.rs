//! Tenants as the core sees them: decoding a tenant and the requests for its credentials (`registration`), and
//! its tokens: how one is made, recognised and verified (`tokens`). Who may see what is
//! [`crate::model::Access`]; which webhooks a grant lets through is `webhooks::routing`.

pub mod registration;
pub mod tokens;
