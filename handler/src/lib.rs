//! The public event dispatcher: ports and adapters around one application.
//!
//! Read it top down; arrows point down only:
//! - [`runtime`]: `handler local` (one process, SQLite) and `handler serve` (the Azure Functions custom handler).
//!   Each wires adapters to the service and translates its triggers (an HTTP request, a worker's lease, a
//!   function invocation) into service calls. [`http`] is the API both serve; [`config`] their settings.
//! - [`service`]: the application, written once: accept and route events, attempt deliveries and carry out the
//!   decisions that follow, answer the API.
//! - [`ports`]: the traits the service needs: stores, queues, the sender, the clock.
//! - [`adapters`]: the ports on SQLite, Cosmos DB, Service Bus and HTTP.
//! - `dispatcher_core` (`handler/core`): the pure core the service decides with: the model, the event catalog
//!   and mapping, routing, dispatch, the delivery policy. No I/O; its own crate, so that nothing of the runtime
//!   can creep in.
//!
//! [`schemas`] writes what the code documents of itself: `schemas/` and the tables of `docs/events.md` and
//! `docs/api.md`; [`telemetry`] sets up logs, metrics (`/metrics`, OTLP) and traces (W3C `traceparent`) for both
//! runtimes.

pub mod adapters;
pub mod config;
pub mod http;
pub mod portal;
pub mod ports;
pub mod runtime;
pub mod schemas;
pub mod service;
pub mod telemetry;
