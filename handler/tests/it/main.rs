//! The handler's integration tests, one binary: the real `handler` binary as a separate process against real
//! HTTP(S) receivers, the stores against a real SQLite file and the local Cosmos DB server, Service Bus against
//! the broker that holds clients to the emulator's contract, and what the code generates.
//!
//! - `api`, `local_mode`, `https_delivery`: `handler local` as users run it.
//! - `identity`: `handler serve` on the managed identity's tokens, from a stand-in of its endpoint.
//! - `functions_serve`, `invocations`, `function_app`: `handler serve` as the Functions host drives it, the
//!   invocation protocol, and `handler package`.
//! - `shutdown`: SIGTERM lets the work under way finish, and nothing is done twice after a restart.
//! - `tenants`: every operation under every kind of credential on both runtimes (the isolation matrix); grants
//!   in routing, the SSRF guard for tenants' targets, `maxWebhooks`, the audit log.
//! - `webhook_races`: concurrent changes to one webhook all survive, on both runtimes; a stale If-Match is a 412.
//! - `webhook_conflicts`: a change that meets other writes is applied again, gives up after 16, respects If-Match.
//! - `local_queue`: new deliveries leased to the local queue that logged them, released by a lease or a restart.
//! - `store_suite`: what every store passes, run against both; `retention`: the SQLite log pruned.
//! - `servicebus`: the Service Bus adapter (azure_core_amqp) against the broker.
//! - `openapi`: the OpenAPI document against an independent validator, and real error answers against it;
//!   `schemathesis`: the document against what the server does, for the operator and for a tenant.
//! - `portal`: the integrator portal in headless Chromium, driven through WebDriver as a person would use it.
//! - `generated_files`, `layers`: `schemas/` and the tables of `docs/` are fresh; the layers' dependencies.
//! - `doc_links`: every relative link and anchor of the README and `docs/` leads somewhere.

mod api;
mod catalog;
mod cosmos_throttling;
mod disk_full;
mod doc_links;
mod enrichment;
mod function_app;
mod functions_serve;
mod generated_files;
mod https_delivery;
mod identity;
mod inbound;
mod inbound_signatures;
mod invocations;
mod layers;
mod local_mode;
mod local_queue;
mod metrics;
mod oauth2;
mod openapi;
mod portal;
mod retention;
mod schemathesis;
mod secrets;
mod servicebus;
mod shutdown;
mod store_suite;
mod support;
mod tenant_races;
mod tenants;
mod traces;
mod transforms;
mod webhook_conflicts;
mod webhook_races;
