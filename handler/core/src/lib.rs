//! The dispatcher's pure core: plain data and plain functions, no I/O, no clock, no randomness (the time and
//! random bytes are arguments), no async runtime. Everything here is tested without a server.
//!
//! Read it in this order:
//! - [`model`]: the domain types, once: webhook, delivery (with its status and attempts), rejected event, ids.
//! - [`events`]: the event catalog (the one place to add an event), decoding an incoming message with every
//!   problem reported, and the mapping table of non-public events to public ones, which documents itself
//!   ([`events::docs`]).
//! - [`webhooks`]: decoding a registration, the routing rule and its index, the exact body a webhook receives.
//! - [`dispatch`]: an event and the webhooks in, the deliveries out, with deterministic ids.
//! - [`policy`]: what an answer means, the retry schedule, signing, which targets may be reached.
//! - [`request`]: the signed HTTP request of an attempt, as data.
//! - [`settle`]: the decisions around an attempt (admit it, then record, retry, disable, call back) as data.
//! - [`tenants`]: decoding a tenant and the requests for its credentials; its tokens, made and verified.
//! - [`inbound`]: verifying a provider's webhook (Stripe, GitHub, Standard Webhooks, an HMAC scheme, a shared
//!   credential) and telling which event it is.

pub mod callback;
pub mod dispatch;
pub mod events;
pub mod inbound;
pub mod model;
pub mod policy;
pub mod request;
pub mod settle;
pub mod template;
pub mod tenants;
pub mod webhooks;

// Template runs are bounded by the bytes they allocate, which this allocator counts (`template::memory`).
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: template::CountingAllocator = template::CountingAllocator;
