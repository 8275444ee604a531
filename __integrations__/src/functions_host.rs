//! `--target functions`: the dispatcher as it runs on Azure, without Azure. `handler serve` runs as the Functions
//! host starts it, on Cosmos DB (the local server of `cosmos/`, or an emulator) and Service Bus (the broker of
//! `servicebus/`, which keeps the emulator's queues as Service Bus does, or the emulator itself). This module
//! plays the part that cannot run on this machine, the Functions host, to its documented contract
//! (docs/azure-functions.md): it receives each queue's messages over AMQP (peek-lock), posts each as an
//! invocation of its function (`POST /{FunctionName}`, the body base64 as with `dataType: binary`, Metadata as
//! the host encodes it), completes the message on a 2xx answer (after sending OnIncomingEvent's `deliveries`
//! outputs to the deliveries queue, each under a MessageId of its own, as the host does) and abandons it
//! otherwise. HTTP requests to the `Api` function are forwarded unchanged, so the scenarios call the handler
//! directly.

use anyhow::{bail, Context};
use azure_core::credentials::Secret;
use azure_core::time::OffsetDateTime;
use azure_core_amqp::message::AmqpMessageBody;
use azure_core_amqp::{
    AmqpClaimsBasedSecurity, AmqpClaimsBasedSecurityApis, AmqpConnection, AmqpConnectionApis, AmqpDelivery,
    AmqpDeliveryApis, AmqpReceiver, AmqpReceiverApis, AmqpReceiverOptions, AmqpSession, AmqpSessionApis,
    AmqpSimpleValue, AmqpSource,
};
use base64::Engine as _;
use dispatcher::adapters::servicebus::{Outgoing, QueueSender, ServiceBusConnection};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::node::{self, NodeServer};
use testkit::TempDir;
use tokio::sync::{mpsc, Semaphore};

/// The well-known key of the Cosmos DB emulator (the local server accepts any).
const COSMOS_KEY: &str = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
/// The emulator's well-known Service Bus key, which the broker checks signatures with.
const SERVICE_BUS_KEY: &str = "SAS_KEY_VALUE";
/// The operator's key of the `handler serve` started here (DISPATCHER_API_KEY: the Api function is anonymous
/// and the handler checks the key itself).
pub const OPERATOR_KEY: &str = "testagent-operator-key-0123456789";
/// host.json `maxConcurrentCalls`.
const MAX_CONCURRENT_CALLS: usize = 16;

/// A queue and the function its messages trigger.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Trigger {
    Events,
    Deliveries,
    DeliveriesDeadLetter,
}

impl Trigger {
    const ALL: [Trigger; 3] = [Trigger::Events, Trigger::Deliveries, Trigger::DeliveriesDeadLetter];

    fn address(self) -> &'static str {
        match self {
            Trigger::Events => "events",
            Trigger::Deliveries => "deliveries",
            Trigger::DeliveriesDeadLetter => "deliveries/$deadletterqueue",
        }
    }

    fn function(self) -> &'static str {
        match self {
            Trigger::Events => "OnIncomingEvent",
            Trigger::Deliveries => "DeliverWebhook",
            Trigger::DeliveriesDeadLetter => "OnDeliveryDeadLettered",
        }
    }
}

struct Host {
    handler: String,
    client: reqwest::Client,
    /// Where OnIncomingEvent's outputs go.
    deliveries: QueueSender,
    /// Event message id → how many delivery jobs OnIncomingEvent made of it, and how many times it ran.
    outputs: Mutex<HashMap<String, usize>>,
    invocations: Mutex<HashMap<String, usize>>,
    /// The jobs DeliverWebhook completed, by message id: a redelivery waits for them.
    completed: Mutex<HashSet<String>>,
    /// Abandon the next event after its outputs are handled, so that it is delivered again.
    redeliver_next_event: AtomicBool,
    /// Set when the target is dropped: the connection's end is no news then.
    stopping: AtomicBool,
    counter: AtomicU64,
}

/// `handler serve`, the stores, and the host around them; all stopped when dropped.
pub struct FunctionsTarget {
    /// The API base URL (`/api/v1` of the handler: the host forwards it unchanged).
    pub api: String,
    host: Arc<Host>,
    /// Contract violations the broker refused (a bad token, an unknown queue): each fails the run.
    violations: Arc<Mutex<Vec<String>>>,
    /// The host's connection, which its receivers use.
    _amqp: Amqp,
    handler: Child,
    /// The local stores, stopped after the handler (it would log their going as failures).
    _servers: Vec<NodeServer>,
    _dir: TempDir,
}

/// An open AMQP connection, its session, and the claims-based security link that authorised it.
struct Amqp {
    _connection: AmqpConnection,
    session: AmqpSession,
    _cbs: AmqpClaimsBasedSecurity,
}

impl Drop for FunctionsTarget {
    fn drop(&mut self) {
        self.host.stopping.store(true, Ordering::SeqCst);
        let _ = self.handler.kill();
        let _ = self.handler.wait();
    }
}

impl FunctionsTarget {
    /// Starts everything. `cosmos` is an endpoint already running and `service_bus` the connection string of a
    /// Service Bus emulator already running; without them, the local server and the broker are started.
    pub async fn start(
        binary: Option<&std::path::Path>,
        cosmos: Option<&str>,
        service_bus: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<FunctionsTarget> {
        let dir = TempDir::new("testagent-functions");
        let mut servers = Vec::new();
        let cosmos = match cosmos {
            Some(endpoint) => endpoint.to_owned(),
            None => {
                let server = node::start("cosmos", "server.js", &[], &[]).map_err(anyhow::Error::msg)?;
                let endpoint = format!("http://127.0.0.1:{}/", server.port);
                servers.push(server);
                endpoint
            }
        };
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        let service_bus = match service_bus {
            Some(connection) => connection.to_owned(),
            None => {
                let config = testkit::integrations().join("../compose/servicebus/Config.json");
                let config = config.to_string_lossy().into_owned();
                let mut server = node::start("servicebus", "broker.js", &[&config], &[]).map_err(anyhow::Error::msg)?;
                let port = server.port;
                watch_broker(server.stdout.take().context("the broker's output")?, violations.clone());
                servers.push(server);
                format!(
                    "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;\
                     SharedAccessKey={SERVICE_BUS_KEY};UseDevelopmentEmulator=true;"
                )
            }
        };
        let connection = ServiceBusConnection::parse(&service_bus).map_err(anyhow::Error::msg)?;
        let port = testkit::free_port();
        let handler_base = format!("http://127.0.0.1:{port}");
        let binary = match binary {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()?.with_file_name("handler"),
        };
        let mut command = Command::new(&binary);
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("COSMOSDB_ENDPOINT", &cosmos)
            .env("COSMOSDB_KEY", COSMOS_KEY)
            .env("COSMOSDB_DATABASE", format!("testagent-{}", std::process::id()))
            .env("COSMOSDB_CREATE_IF_MISSING", "true")
            .env("ServiceBusConnection", &service_bus)
            .env("EVENTS_QUEUE", "events")
            .env("DELIVERIES_QUEUE", "deliveries")
            .env("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")
            .env("DISPATCHER_LOG", "warn")
            .env("DISPATCHER_API_KEY", OPERATOR_KEY)
            // The receivers are on loopback: tenants' webhooks reach them only through an allowed network.
            .env("DISPATCHER_ALLOWED_NETWORKS", "127.0.0.0/8")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let handler = command
            .spawn()
            .with_context(|| format!("cannot start {} (build it with `cargo build -p handler`)", binary.display()))?;
        let host = Arc::new(Host {
            handler: handler_base.clone(),
            client: dispatcher::adapters::tls::client().map_err(anyhow::Error::msg)?,
            deliveries: QueueSender::new(&connection, Trigger::Deliveries.address()),
            outputs: Mutex::default(),
            invocations: Mutex::default(),
            completed: Mutex::default(),
            redeliver_next_event: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            counter: AtomicU64::new(0),
        });
        let started = Instant::now();
        while !host.client.get(format!("{handler_base}/")).send().await.is_ok_and(|r| r.status().is_success()) {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("handler serve did not answer GET / within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let amqp = open_session(&connection).await?;
        for trigger in Trigger::ALL {
            let receiver = AmqpReceiver::new();
            let options = AmqpReceiverOptions {
                name: Some(format!("functions-host-{}", trigger.function())),
                ..Default::default()
            };
            receiver
                .attach(
                    &amqp.session,
                    AmqpSource::builder().with_address(trigger.address().to_owned()).build(),
                    Some(options),
                )
                .await
                .with_context(|| format!("receiving from {}", trigger.address()))?;
            tokio::spawn(pump(host.clone(), trigger, receiver));
        }
        Ok(FunctionsTarget {
            api: format!("{handler_base}/api/v1"),
            host,
            violations,
            _amqp: amqp,
            handler,
            _servers: servers,
            _dir: dir,
        })
    }

    /// How many delivery jobs OnIncomingEvent made of the event sent as message `id`, once it has run.
    pub async fn deliveries_of(&self, id: &str, deadline: Duration) -> Result<u64, String> {
        let started = Instant::now();
        loop {
            if let Some(count) = self.host.outputs.lock().ok().and_then(|o| o.get(id).copied()) {
                return Ok(count as u64);
            }
            if started.elapsed() > deadline {
                return Err(format!("event {id}: OnIncomingEvent did not complete within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Makes the next event be delivered twice: its first invocation answers, its outputs are sent and their
    /// jobs run, and then its message is abandoned (as when the lock is lost), so OnIncomingEvent runs again.
    pub fn redeliver_next_event(&self) {
        self.host.redeliver_next_event.store(true, Ordering::SeqCst);
    }

    /// Waits until OnIncomingEvent ran `times` times for the event sent as message `id`, and the jobs of each
    /// run were completed.
    pub async fn invoked(&self, id: &str, times: usize, deadline: Duration) -> Result<(), String> {
        let started = Instant::now();
        while self.host.invocations.lock().ok().and_then(|i| i.get(id).copied()).unwrap_or(0) < times {
            if started.elapsed() > deadline {
                return Err(format!("event {id}: OnIncomingEvent did not run {times} times within {deadline:?}"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// What the broker refused as against the contract.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Reads the broker's report lines; a refusal is a contract violation.
fn watch_broker(stdout: BufReader<std::process::ChildStdout>, violations: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let Ok(report) = serde_json::from_str::<Value>(&line) else { continue };
            if report.get("refused").is_some() || report["accepted"] == false {
                if let Ok(mut violations) = violations.lock() {
                    violations.push(line);
                }
            }
        }
    });
}

/// A connection and session, authorised for every queue the host receives from.
async fn open_session(connection: &ServiceBusConnection) -> anyhow::Result<Amqp> {
    let amqp = AmqpConnection::new();
    let url = azure_core::http::Url::parse(&connection.endpoint.url())?;
    amqp.open("testagent-functions-host".into(), url, None).await.context("connecting to Service Bus")?;
    let session = AmqpSession::new();
    session.begin(&amqp, None).await?;
    let cbs = AmqpClaimsBasedSecurity::new(session.clone())?;
    cbs.attach().await?;
    let expiry = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
    for queue in ["events", "deliveries"] {
        let (token, kind, expiry) = connection.token(queue, expiry).await.map_err(anyhow::Error::msg)?;
        let expires = OffsetDateTime::from_unix_timestamp(expiry as i64)?;
        cbs.authorize_path(connection.audience(queue), Some(kind.into()), &Secret::new(token), expires)
            .await
            .with_context(|| format!("put-token for {queue}"))?;
    }
    Ok(Amqp { _connection: amqp, session, _cbs: cbs })
}

/// Takes a queue's messages, invokes their function (at most `maxConcurrentCalls` at once), and settles each
/// with what the invocation answered. One task holds the receiver; settlements come back to it.
async fn pump(host: Arc<Host>, trigger: Trigger, receiver: AmqpReceiver) {
    let calls = Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS));
    let (settle, mut settlements) = mpsc::unbounded_channel::<(AmqpDelivery, bool)>();
    loop {
        tokio::select! {
            biased;
            Some((delivery, complete)) = settlements.recv() => {
                let settled = match complete {
                    true => receiver.accept_delivery(&delivery).await,
                    false => receiver.release_delivery(&delivery).await,
                };
                if let Err(error) = settled {
                    eprintln!("functions host: settling a message of {}: {error}", trigger.address());
                }
            }
            // Cancel-safe (fe2o3-amqp's `recv`): a settlement may interrupt the wait for the next message.
            received = receiver.receive_delivery() => match received {
                Ok(delivery) => {
                    let Ok(permit) = calls.clone().acquire_owned().await else { return };
                    let (host, settle) = (host.clone(), settle.clone());
                    tokio::spawn(async move {
                        let complete = host.invoke(trigger, &delivery).await;
                        drop(permit);
                        let _ = settle.send((delivery, complete));
                    });
                }
                Err(error) => {
                    if !host.stopping.load(Ordering::SeqCst) {
                        eprintln!("functions host: receiving from {}: {error}", trigger.address());
                    }
                    return;
                }
            }
        }
    }
}

fn text(value: &AmqpSimpleValue) -> String {
    match value {
        AmqpSimpleValue::String(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

impl Host {
    fn next_id(&self) -> String {
        format!("host-{}-{}", std::process::id(), self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// The invocation of `trigger`'s function for a message, as the host encodes it (contract: `dataType:
    /// binary` bodies are base64; strings in Metadata are JSON text inside a string).
    fn invocation(&self, trigger: Trigger, delivery: &AmqpDelivery) -> (Value, String, Option<String>) {
        let message = delivery.message();
        let body = match &message.body {
            AmqpMessageBody::Binary(sections) => sections.concat(),
            _ => Vec::new(),
        };
        let properties = message.properties.clone().unwrap_or_default();
        let id = |id: Option<azure_core_amqp::message::AmqpMessageId>| {
            id.map(|id| match id {
                azure_core_amqp::message::AmqpMessageId::String(text) => text,
                other => format!("{other:?}"),
            })
        };
        let message_id = id(properties.message_id).unwrap_or_default();
        let correlation_id = id(properties.correlation_id);
        let encoded = |text: &str| Value::String(Value::String(text.to_owned()).to_string());
        let delivery_count = message.header.as_ref().map_or(0, |h| h.delivery_count) + 1;
        let application: serde_json::Map<String, Value> = message
            .application_properties
            .as_ref()
            .map(|p| p.0.iter().map(|(k, v)| (k.clone(), encoded(&text(v)))).collect())
            .unwrap_or_default();
        let mut metadata = json!({
            "DeliveryCount": delivery_count.to_string(),
            "MessageId": encoded(&message_id),
            "ContentType": encoded("application/json"),
            "ApplicationProperties": application,
            "UserProperties": application,
            "sys": {"MethodName": trigger.function(), "UtcNow": httpdate::fmt_http_date(SystemTime::now())},
        });
        if let Some(correlation_id) = &correlation_id {
            metadata["CorrelationId"] = encoded(correlation_id);
        }
        let data = base64::engine::general_purpose::STANDARD.encode(&body);
        (json!({"Data": {"msg": data}, "Metadata": metadata}), message_id, correlation_id)
    }

    /// One invocation; true when its message is to be completed.
    async fn invoke(&self, trigger: Trigger, delivery: &AmqpDelivery) -> bool {
        let (invocation, message_id, correlation_id) = self.invocation(trigger, delivery);
        let answer = self
            .client
            .post(format!("{}/{}", self.handler, trigger.function()))
            .header("x-azure-functions-invocationid", self.next_id())
            .json(&invocation)
            .send()
            .await;
        let completed = match answer {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(answer) = completed else { return false };
        if trigger == Trigger::Deliveries {
            if let Ok(mut completed) = self.completed.lock() {
                completed.insert(message_id);
            }
            return true;
        }
        if trigger != Trigger::Events {
            return true;
        }
        let outputs = answer["Outputs"]["deliveries"].as_array().cloned().unwrap_or_default();
        let mut sent = Vec::new();
        for output in &outputs {
            let body = output.as_str().map(str::to_owned).unwrap_or_else(|| output.to_string());
            let id = self.next_id();
            let job = Outgoing {
                message_id: &id,
                correlation_id: correlation_id.as_deref(),
                scheduled_at_ms: None,
                traceparent: None,
                body: &body,
                retry: None,
            };
            if let Err(error) = self.deliveries.send(job).await {
                // An output that cannot be sent fails the invocation: the message is delivered again.
                eprintln!("functions host: {error}");
                return false;
            }
            sent.push(id);
        }
        if let Ok(mut counts) = self.outputs.lock() {
            counts.insert(message_id.clone(), outputs.len());
        }
        let redeliver = self.redeliver_next_event.swap(false, Ordering::SeqCst);
        // The jobs run before the message settles: a redelivery comes after them, and `invoked` tells when all
        // of an event's jobs are done.
        self.wait_for(&sent).await;
        if let Ok(mut counts) = self.invocations.lock() {
            *counts.entry(message_id).or_default() += 1;
        }
        !redeliver
    }

    /// Waits until DeliverWebhook completed each of these jobs (at most 20 s).
    async fn wait_for(&self, jobs: &[String]) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let done = self.completed.lock().map(|c| jobs.iter().all(|id| c.contains(id))).unwrap_or(true);
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
