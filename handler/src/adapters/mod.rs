//! The adapters: each implements ports (`crate::ports`) on one technology, and is tested against a real
//! counterpart.
//!
//! - `sqlite/`: the local store and queue, one SQLite file.
//! - `cosmos/`: the Azure store, Cosmos DB.
//! - `servicebus/`: Service Bus over AMQP (`azure_core_amqp`): the events queue, and the deliveries queue whose
//!   jobs the DeliverWebhook function takes.
//! - `sender.rs`: the HTTP sender of deliveries and callbacks (hyper, rustls), with the SSRF guard and the
//!   targets' credentials: mTLS client certificates, and OAuth 2.0 tokens from `oauth2.rs`.
//! - `guard.rs`: the SSRF guard at connect time, for the sender.
//! - `sealed.rs`: webhook secrets encrypted at rest, around whichever webhook store.
//! - `identity.rs`: the managed identity whose tokens Cosmos DB and Service Bus take instead of keys.
//! - `tls.rs`: the process's one TLS stack, for every client.

pub mod cosmos;
pub mod guard;
pub mod identity;
pub mod oauth2;
pub mod sealed;
pub mod sender;
pub mod servicebus;
pub mod sqlite;
pub mod tls;
