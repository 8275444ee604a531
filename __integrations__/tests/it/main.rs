//! The test agent's integration tests, one binary: `testagent run`, `publish`, `receive` and `load` as users run
//! them (separate processes against the real handler), the local Cosmos DB server's fixes, the container stack's
//! files and settings, the Azure template (`infra`), and, with `--features testcontainers`, the Functions target
//! against the real emulators.

mod compose;
mod cosmos_server;
#[cfg(feature = "testcontainers")]
mod emulators;
mod infra;
mod load;
mod publish;
mod receive;
mod run;

/// The Service Bus broker the handler's tests use too (`handler/tests/it/support/servicebus.rs`).
#[path = "../../../handler/tests/it/support/servicebus.rs"]
mod broker;
/// `handler local` as a child process, as the test agent starts it (`src/handler_process.rs`).
#[path = "../../src/handler_process.rs"]
mod handler_process;
/// The npm install that the test agent's and the handler's tests share (`src/npm.rs`).
#[path = "../../src/npm.rs"]
mod npm;
