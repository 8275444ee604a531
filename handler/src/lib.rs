//! The public event dispatcher.
//!
//! Internal services emit domain events; the dispatcher validates them ([`events`]), maps the non-public ones
//! to public events through the mapping table ([`events::mapping`]), routes each public event to the webhooks
//! registered for it ([`webhooks`]) and turns all that into deliveries ([`dispatch`]).
//!
//! Those modules are the functional core: plain functions over plain data, no I/O, no clock. [`schemas`]
//! generates the documentation and JSON Schemas from them.

pub mod api;
pub mod config;
pub mod delivery;
pub mod dispatch;
pub mod events;
pub mod functions;
pub mod http_client;
pub mod local;
pub mod schemas;
pub mod store;
pub mod validation;
pub mod webhooks;
