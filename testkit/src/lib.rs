//! What the handler's integration tests and the test agent share, each helper once: a free port, a temporary
//! directory, `handler local` started as a process (`handler`), and the local servers the tests run against,
//! each a Node.js program under `__integrations__/` whose npm packages are installed when missing (`npm`):
//! Cosmos DB (`cosmos`), the Service Bus broker (`servicebus`) and the OpenID provider (`oidc`); and Python tools
//! in virtual environments of their own (`python`).

pub mod cosmos;
pub mod handler;
pub mod node;
pub mod npm;
pub mod oidc;
pub mod python;
pub mod servicebus;

use std::path::{Path, PathBuf};

/// A port nothing listens on now (the OS picks it): for a process that must be told its port up front.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    listener.local_addr().expect("a bound address").port()
}

/// A new, empty directory of this process, named after `name`; left behind for reading after a failure.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dispatcher-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A directory removed when dropped, for the test agent's own runs.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir(temp_dir(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `__integrations__/`, where the local servers and the compose files are: beside this crate.
pub fn integrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../__integrations__")
}
