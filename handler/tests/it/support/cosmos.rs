//! The local Cosmos DB server of the tests (`__integrations__/cosmos/server.js`), for the tests that need one.

/// The local Cosmos DB server (`__integrations__/cosmos/server.js`), its npm packages installed when missing.
pub struct CosmosServer {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for CosmosServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_cosmos_server() -> CosmosServer {
    start_cosmos_server_with(&[])
}

/// The server with these environment variables (`COSMOS_REQUEST_LOG=<file>` logs every request).
pub fn start_cosmos_server_with(env: &[(&str, &str)]) -> CosmosServer {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../__integrations__/cosmos");
    super::npm::install(&dir).unwrap();
    let mut child = Command::new("node")
        .args(["server.js", "0"])
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.strip_prefix("listening ").map(str::trim).unwrap_or_else(|| panic!("not started: {line:?}"));
    CosmosServer { endpoint: format!("http://127.0.0.1:{port}/"), child }
}

/// The well-known key of the Cosmos DB emulator (the local server accepts any).
pub const EMULATOR_KEY: &str =
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
