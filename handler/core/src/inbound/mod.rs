//! Inbound webhooks: sources (`source`: what a provider posts to, decoded from the API with every problem), how
//! a provider's request is verified and which event it is (`verify`). Pure: the headers, the exact
//! raw body and the time in; the provider's event type and id out, or why the request is refused. Every
//! signature is compared in constant time, after it is decoded, against each of the source's secrets (two
//! during a rotation).
//!
//! - `stripe`: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`, HMAC-SHA256 of `"{t}.{body}"` with the secret as
//!   written; the type and id are the body's `type` and `id`.
//! - `github`: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body; the type is `X-GitHub-Event`, the id
//!   `X-GitHub-Delivery`.
//! - `standard-webhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> ...`, HMAC-SHA256 of
//!   `"{id}.{timestamp}.{body}"` with the key of a `whsec_` secret (what this dispatcher sends); the type is the
//!   body's `type`, or its `name`.
//! - `hmac`: a header of the provider's, SHA-256 or SHA-512, hex or base64, an optional prefix (`sha256=`) and an
//!   optional signed timestamp header (then `"{timestamp}.{body}"` is signed).
//! - `basic` and `api-key`: a shared credential, compared in constant time.

pub mod received;
mod source;
mod verify;

pub use received::MAX_TYPE_CHARS;
pub use source::{decode_source, source_schema, Source, SourceRecord, SOURCE_FIELDS};
pub use verify::{verify, Algorithm, Encoding, HmacScheme, Locator, Refused, Verified, Verify};

/// How long a provider's request is remembered, so that its repeats are answered without being published
/// again: longer than providers retry (Stripe for up to 3 days).
pub const DEDUPLICATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(4 * 24 * 3600);
