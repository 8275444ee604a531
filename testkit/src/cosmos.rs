//! The local Cosmos DB server (`__integrations__/cosmos/server.js`, docs/cosmos-local.md).

use crate::node::{self, NodeServer};

/// The well-known key of the Cosmos DB emulator (the local server accepts any).
pub const EMULATOR_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// A running server, stopped when dropped.
pub struct CosmosServer {
    _server: NodeServer,
    /// `http://127.0.0.1:<port>/`.
    pub endpoint: String,
}

pub fn start_cosmos_server() -> CosmosServer {
    start_cosmos_server_with(&[])
}

/// The server with these environment variables (`COSMOS_REQUEST_LOG=<file>` logs every request).
pub fn start_cosmos_server_with(env: &[(&str, &str)]) -> CosmosServer {
    let server = node::start("cosmos", "server.js", &[], env).unwrap_or_else(|e| panic!("{e}"));
    CosmosServer { endpoint: format!("http://127.0.0.1:{}/", server.port), _server: server }
}
