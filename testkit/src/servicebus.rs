//! The AMQP broker of the tests (`__integrations__/servicebus/broker.js`), holding clients to the Service Bus
//! emulator's contract.

use crate::node::{self, NodeServer};
use serde_json::Value;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The emulator's well-known key (`SharedAccessKey=SAS_KEY_VALUE`), which the broker checks signatures with.
pub const EMULATOR_KEY: &str = "SAS_KEY_VALUE";

pub struct ServiceBusBroker {
    _server: NodeServer,
    lines: Receiver<Value>,
    pub port: u16,
}

/// Starts the broker with the queues of `compose/servicebus/Config.json`, the emulator's configuration.
pub fn start_servicebus_broker() -> ServiceBusBroker {
    start_servicebus_broker_with(&[])
}

/// The broker with these environment variables (`BROKER_JWT=<token>` accepts that Entra token).
pub fn start_servicebus_broker_with(env: &[(&str, &str)]) -> ServiceBusBroker {
    let config = crate::integrations().join("../compose/servicebus/Config.json");
    let config = config.to_string_lossy().into_owned();
    let mut server = node::start("servicebus", "broker.js", &[&config], env).unwrap_or_else(|e| panic!("{e}"));
    let stdout = server.stdout.take().expect("the broker's output");
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let value = serde_json::from_str(&line).unwrap_or_else(|_| Value::String(line));
            if send.send(value).is_err() {
                break;
            }
        }
    });
    ServiceBusBroker { port: server.port, _server: server, lines }
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
