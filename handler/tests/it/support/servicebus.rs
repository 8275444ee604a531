//! The AMQP broker of the tests (`__integrations__/servicebus/broker.js`), holding clients to the Service Bus
//! emulator's contract; its npm packages are installed when missing. Shared by the handler's and the test agent's
//! tests (`#[path]`), so that both start it the same way.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The emulator's well-known key (`SharedAccessKey=SAS_KEY_VALUE`), which the broker checks signatures with.
pub const EMULATOR_KEY: &str = "SAS_KEY_VALUE";

pub struct ServiceBusBroker {
    child: Child,
    lines: Receiver<Value>,
    pub port: u16,
}

impl Drop for ServiceBusBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn integrations() -> PathBuf {
    // Both crates sit next to `__integrations__`, and this file is compiled into tests of either.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("a workspace member").join("__integrations__")
}

/// Starts the broker with the queues of `compose/servicebus/Config.json`, the emulator's configuration.
pub fn start_servicebus_broker() -> ServiceBusBroker {
    start_servicebus_broker_with(&[])
}

/// The broker with these environment variables (`BROKER_JWT=<token>` accepts that Entra token).
pub fn start_servicebus_broker_with(env: &[(&str, &str)]) -> ServiceBusBroker {
    let dir = integrations().join("servicebus");
    super::npm::install(&dir).unwrap();
    let config = integrations().join("../compose/servicebus/Config.json");
    let mut child = Command::new("node")
        .arg("broker.js")
        .arg("0")
        .arg(&config)
        .envs(env.iter().copied())
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port = line.strip_prefix("listening ").and_then(|p| p.trim().parse().ok());
    let port = port.unwrap_or_else(|| panic!("the broker did not start: {line:?}"));
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or_else(|_| Value::String(line));
            if send.send(value).is_err() {
                break;
            }
        }
    });
    ServiceBusBroker { child, lines, port }
}

impl ServiceBusBroker {
    /// The emulator's connection string, for this broker, with `key`.
    pub fn connection_string(&self, key: &str) -> String {
        format!(
            "Endpoint=sb://127.0.0.1:{};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key};\
             UseDevelopmentEmulator=true;",
            self.port
        )
    }

    /// The next line the broker reported, within 10 s.
    pub fn next(&self) -> Value {
        match self.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(value) => value,
            Err(RecvTimeoutError::Timeout) => panic!("the broker reported nothing within 10 s"),
            Err(RecvTimeoutError::Disconnected) => panic!("the broker exited"),
        }
    }

    /// The next line that reports a message received (skipping put-token and refusal reports).
    pub fn next_message(&self) -> Value {
        loop {
            let line = self.next();
            if line.get("queue").is_some() {
                return line;
            }
        }
    }
}
