//! The test agent's integration tests, one binary: `testagent run`, `publish`, `receive` and `load` as users run
//! them (separate processes against the real handler), the local Cosmos DB server's fixes, the container stack's
//! files and settings, the Azure template (`infra`), and, with `--features testcontainers`, the Functions target
//! against the real emulators.

mod compose;
mod cosmos_server;
mod deploy;
#[cfg(feature = "testcontainers")]
mod emulators;
mod infra;
mod load;
mod publish;
mod receive;
mod run;
