//! The core's integration tests, one binary: the original system's scenarios through `dispatch` (`original`),
//! properties of routing and dispatch over random webhooks and events (`properties`), and tenants' grants in
//! routing (`grants`).

mod catalog_file;
mod enrichers;
mod fuzz;
mod grants;
mod mapping;
mod original;
mod properties;
mod received;
mod transforms;

use dispatcher_core::model::{Secret, Webhook, WebhookConfig};

// As in `handler`: template runs are bounded by the bytes they allocate, which this allocator counts.
#[global_allocator]
static ALLOCATOR: dispatcher_core::template::CountingAllocator = dispatcher_core::template::CountingAllocator;
use serde_json::Value;

/// A webhook of id `id` registered with `config` (the original configuration shape; a URL is added if missing).
pub fn webhook(id: &str, mut config: Value) -> Webhook {
    if config.get("url").is_none() {
        config["url"] = Value::from(format!("https://agent.example/{id}"));
    }
    let config = WebhookConfig::decode(&config).unwrap_or_else(|report| panic!("{id}: {report}"));
    Webhook::new(id.into(), config, Secret::from_key(&[0; 32]), 0)
}
