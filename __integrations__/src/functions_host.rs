//! `--target functions`: the dispatcher as it runs on Azure, without Azure. `handler serve` runs as the Functions
//! host starts it, on Cosmos DB from the local server (`cosmos/`); this module plays the two parts that cannot
//! run on this machine, to their documented contract (../shared/reference/azure-functions-custom-handler.md):
//!
//! - Service Bus: a REST endpoint taking `POST /{queue}/messages` (§7) that checks the SAS token's signature
//!   and reads `BrokerProperties` (`MessageId`, `CorrelationId`, `ScheduledEnqueueTimeUtc` in RFC 1123), with
//!   duplicate detection on the deliveries queue, `MaxDeliveryCount` and the dead-letter queue (§6).
//! - The host: each message becomes an invocation of its function (`POST /{FunctionName}`, body base64 as with
//!   `dataType: binary`, Metadata JSON-encoded, §2); a 2xx answer completes the message and its `deliveries`
//!   outputs go to the deliveries queue; anything else abandons it (redelivered at once, `DeliveryCount + 1`).
//!   HTTP requests to the `Api` function are forwarded unchanged, so the scenarios call the handler directly.

use crate::handler_process::TempDir;
use anyhow::{bail, Context};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, Semaphore};

const NAMESPACE: &str = "testagent";
const POLICY: &str = "RootManageSharedAccessKey";
const KEY: &str = "dGVzdGFnZW50LWxvY2FsLWtleS1ub3QtYS1zZWNyZXQ=";
const EMULATOR_KEY: &str = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";
/// The queue setting of the README's deploy section, and the emulator's default.
const MAX_DELIVERY_COUNT: u32 = 10;
/// host.json `maxConcurrentCalls`.
const MAX_CONCURRENT_CALLS: usize = 16;

#[derive(Debug, Clone)]
struct Message {
    id: String,
    body: Vec<u8>,
    correlation_id: Option<String>,
    visible_at: SystemTime,
    delivery_count: u32,
    dead_letter_reason: Option<String>,
}

impl Message {
    /// A message as sent: not yet delivered.
    fn new(id: String, body: Vec<u8>, correlation_id: Option<String>, visible_at: SystemTime) -> Message {
        Message { id, body, correlation_id, visible_at, delivery_count: 0, dead_letter_reason: None }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Queue {
    Events,
    Deliveries,
    DeliveriesDeadLetter,
}

impl Queue {
    fn function(self) -> &'static str {
        match self {
            Queue::Events => "OnIncomingEvent",
            Queue::Deliveries => "DeliverWebhook",
            Queue::DeliveriesDeadLetter => "OnDeliveryDeadLettered",
        }
    }
}

#[derive(Default)]
struct Queues {
    messages: HashMap<Queue, VecDeque<Message>>,
    /// Message ids the deliveries queue has seen (duplicate detection).
    seen: HashSet<String>,
}

struct Host {
    queues: Mutex<Queues>,
    wake: Notify,
    handler: String,
    client: reqwest::Client,
    /// Event message id → how many delivery jobs OnIncomingEvent made of it.
    outputs: Mutex<HashMap<String, usize>>,
    /// Contract violations seen by the stand-in (a bad signature, an unreadable property): each fails the run.
    violations: Mutex<Vec<String>>,
    counter: AtomicU64,
}

/// `handler serve`, the Cosmos DB server, and the host and Service Bus around them; all stopped when dropped.
pub struct FunctionsTarget {
    /// The API base URL (`/api/v1` of the handler: the host forwards it unchanged).
    pub api: String,
    host: Arc<Host>,
    children: Vec<Child>,
    _dir: TempDir,
}

impl Drop for FunctionsTarget {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts the local Cosmos DB server (`__integrations__/cosmos`), installing its npm packages when missing.
fn start_cosmos() -> anyhow::Result<(Child, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cosmos");
    if !dir.join("node_modules/@vercel/cosmosdb-server").is_dir() {
        let npm = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .context("npm (Node.js 18 or later) is needed for the local Cosmos DB server")?;
        if !npm.success() {
            bail!("npm ci in {} failed", dir.display());
        }
    }
    let mut child = Command::new("node")
        .args(["server.js", "0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start node")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let Some(port) = line.strip_prefix("listening ").map(str::trim) else {
        let _ = child.kill();
        bail!("the Cosmos DB server did not start: {line:?}");
    };
    let endpoint = format!("http://127.0.0.1:{port}/");
    Ok((child, endpoint))
}

impl FunctionsTarget {
    /// Starts everything; `cosmos` is an endpoint already running, or none to start the local server.
    pub async fn start(
        binary: Option<&std::path::Path>,
        cosmos: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<FunctionsTarget> {
        let dir = TempDir::new("testagent-functions");
        let mut children = Vec::new();
        let cosmos = match cosmos {
            Some(endpoint) => endpoint.to_owned(),
            None => {
                let (child, endpoint) = start_cosmos()?;
                children.push(child);
                endpoint
            }
        };
        let port = free_port()?;
        let handler_base = format!("http://127.0.0.1:{port}");
        let host = Arc::new(Host {
            queues: Mutex::default(),
            wake: Notify::new(),
            handler: handler_base.clone(),
            client: dispatcher::http_client::client().map_err(anyhow::Error::msg)?,
            outputs: Mutex::default(),
            violations: Mutex::default(),
            counter: AtomicU64::new(0),
        });
        let service_bus = serve_service_bus(host.clone()).await?;
        let binary = match binary {
            Some(path) => path.to_path_buf(),
            None => std::env::current_exe()?.with_file_name("handler"),
        };
        let mut command = Command::new(&binary);
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("COSMOSDB_ENDPOINT", &cosmos)
            .env("COSMOSDB_KEY", EMULATOR_KEY)
            .env("COSMOSDB_DATABASE", format!("testagent-{}", std::process::id()))
            .env("COSMOSDB_CREATE_IF_MISSING", "true")
            .env(
                "ServiceBusConnection",
                format!("Endpoint=sb://{NAMESPACE}.servicebus.windows.net/;SharedAccessKeyName={POLICY};SharedAccessKey={KEY}"),
            )
            .env("EVENTS_QUEUE", "events")
            .env("DELIVERIES_QUEUE", "deliveries")
            .env("DISPATCHER_SERVICEBUS_REST_URL", &service_bus)
            .env("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")
            .env("DISPATCHER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        children.push(
            command.spawn().with_context(|| {
                format!("cannot start {} (build it with `cargo build -p handler`)", binary.display())
            })?,
        );
        let started = Instant::now();
        while !host.client.get(format!("{handler_base}/")).send().await.is_ok_and(|r| r.status().is_success()) {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("handler serve did not answer GET / within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::spawn(pump(host.clone()));
        Ok(FunctionsTarget { api: format!("{handler_base}/api/v1"), host, children, _dir: dir })
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

    /// What the Service Bus stand-in refused as against the contract.
    pub fn violations(&self) -> Vec<String> {
        self.host.violations.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

async fn serve_service_bus(host: Arc<Host>) -> anyhow::Result<String> {
    let app = axum::Router::new().route("/{queue}/messages", axum::routing::post(receive)).with_state(host);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// Checks a SAS token (contract §7): for this queue's URI, signed with the key, not expired.
fn check_token(headers: &HeaderMap, queue: &str) -> Result<(), String> {
    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let fields: HashMap<String, String> = url::form_urlencoded::parse(
        token.strip_prefix("SharedAccessSignature ").ok_or("Authorization: not a SharedAccessSignature")?.as_bytes(),
    )
    .into_owned()
    .collect();
    let field = |name: &str| fields.get(name).cloned().ok_or(format!("SAS token: no {name}"));
    let uri = format!("https://{NAMESPACE}.servicebus.windows.net/{queue}/messages");
    if field("sr")? != uri {
        return Err(format!("SAS token: sr {:?} is not {uri:?}", field("sr")?));
    }
    if field("skn")? != POLICY {
        return Err("SAS token: skn is not the policy".into());
    }
    let expiry = field("se")?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    if expiry.parse::<u64>().map_err(|_| format!("SAS token: se {expiry:?}"))? <= now {
        return Err("SAS token: expired".into());
    }
    let encoded: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(format!("{encoded}\n{expiry}").as_bytes());
    if base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) != field("sig")? {
        return Err("SAS token: the signature does not verify".into());
    }
    Ok(())
}

async fn receive(
    State(host): State<Arc<Host>>,
    Path(queue_name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let result = (|| {
        let queue = match queue_name.as_str() {
            "events" => Queue::Events,
            "deliveries" => Queue::Deliveries,
            other => return Err((StatusCode::NOT_FOUND, format!("no queue {other:?}"))),
        };
        check_token(&headers, &queue_name).map_err(|e| (StatusCode::UNAUTHORIZED, e))?;
        let text = headers.get("brokerproperties").and_then(|v| v.to_str().ok()).unwrap_or("{}");
        let properties: Value =
            serde_json::from_str(text).map_err(|e| (StatusCode::BAD_REQUEST, format!("BrokerProperties: {e}")))?;
        let visible_at = match properties["ScheduledEnqueueTimeUtc"].as_str() {
            Some(at) => httpdate::parse_http_date(at)
                .map_err(|_| (StatusCode::BAD_REQUEST, format!("ScheduledEnqueueTimeUtc {at:?} is not RFC 1123")))?,
            None => SystemTime::now(),
        };
        let id = properties["MessageId"].as_str().map(str::to_owned).unwrap_or_else(|| host.next_id());
        let correlation_id = properties["CorrelationId"].as_str().map(str::to_owned);
        host.enqueue(queue, Message::new(id, body.to_vec(), correlation_id, visible_at));
        Ok(())
    })();
    match result {
        Ok(()) => StatusCode::CREATED,
        Err((status, violation)) => {
            if let Ok(mut violations) = host.violations.lock() {
                violations.push(violation);
            }
            status
        }
    }
}

impl Host {
    fn next_id(&self) -> String {
        format!("sb-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    fn enqueue(&self, queue: Queue, message: Message) {
        if let Ok(mut queues) = self.queues.lock() {
            // Duplicate detection, as on the deliveries queue of the README's deploy section.
            if queue == Queue::Deliveries && message.delivery_count == 0 && !queues.seen.insert(message.id.clone()) {
                return;
            }
            queues.messages.entry(queue).or_default().push_back(message);
        }
        self.wake.notify_one();
    }

    /// Takes the messages visible now; returns them and when the next one becomes visible.
    fn take_visible(&self) -> (Vec<(Queue, Message)>, Option<SystemTime>) {
        let now = SystemTime::now();
        let mut taken = Vec::new();
        let mut next = None::<SystemTime>;
        if let Ok(mut queues) = self.queues.lock() {
            for (queue, messages) in queues.messages.iter_mut() {
                let mut waiting = VecDeque::new();
                for message in messages.drain(..) {
                    if message.visible_at <= now {
                        taken.push((*queue, message));
                    } else {
                        next = Some(next.map_or(message.visible_at, |n| n.min(message.visible_at)));
                        waiting.push_back(message);
                    }
                }
                *messages = waiting;
            }
        }
        (taken, next)
    }

    /// The invocation of `queue`'s function for `message` (contract §2: `dataType: binary`).
    fn invocation(&self, queue: Queue, message: &Message) -> Value {
        let encoded = |text: &str| Value::String(Value::String(text.to_owned()).to_string());
        let mut metadata = json!({
            "DeliveryCount": message.delivery_count.to_string(),
            "MessageId": encoded(&message.id),
            "ContentType": encoded("application/json"),
            "ApplicationProperties": {},
            "sys": {"MethodName": queue.function(), "UtcNow": httpdate::fmt_http_date(SystemTime::now())},
        });
        if let Some(correlation_id) = &message.correlation_id {
            metadata["CorrelationId"] = encoded(correlation_id);
        }
        if let Some(reason) = &message.dead_letter_reason {
            metadata["DeadLetterSource"] = encoded("deliveries");
            metadata["ApplicationProperties"] = json!({
                "DeadLetterReason": encoded(reason),
                "DeadLetterErrorDescription": encoded(&format!("Message could not be consumed after {MAX_DELIVERY_COUNT} delivery attempts.")),
            });
        }
        json!({"Data": {"msg": base64::engine::general_purpose::STANDARD.encode(&message.body)}, "Metadata": metadata})
    }

    /// One invocation: 2xx completes the message (and sends its outputs), anything else abandons it.
    async fn invoke(self: Arc<Self>, queue: Queue, mut message: Message) {
        message.delivery_count += 1;
        let invocation = self.invocation(queue, &message);
        let answer = self
            .client
            .post(format!("{}/{}", self.handler, queue.function()))
            .header("x-azure-functions-invocationid", self.next_id())
            .json(&invocation)
            .send()
            .await;
        let completed = match answer {
            Ok(response) if response.status().is_success() => response.json::<Value>().await.ok(),
            _ => None,
        };
        let Some(answer) = completed else {
            if message.delivery_count >= MAX_DELIVERY_COUNT {
                if queue == Queue::Deliveries {
                    message.delivery_count = 0;
                    message.dead_letter_reason = Some("MaxDeliveryCountExceeded".into());
                    self.enqueue(Queue::DeliveriesDeadLetter, message);
                }
            } else {
                self.enqueue(queue, message);
            }
            return;
        };
        let outputs = answer["Outputs"]["deliveries"].as_array().cloned().unwrap_or_default();
        for output in &outputs {
            let body =
                output.as_str().map(|s| s.as_bytes().to_vec()).unwrap_or_else(|| output.to_string().into_bytes());
            let job = Message::new(self.next_id(), body, message.correlation_id.clone(), SystemTime::now());
            self.enqueue(Queue::Deliveries, job);
        }
        if queue == Queue::Events {
            if let Ok(mut counts) = self.outputs.lock() {
                counts.insert(message.id.clone(), outputs.len());
            }
        }
    }
}

/// Takes visible messages and invokes their functions, at most `maxConcurrentCalls` at once.
async fn pump(host: Arc<Host>) {
    let calls = Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS));
    loop {
        let (taken, next) = host.take_visible();
        for (queue, message) in taken {
            let Ok(permit) = calls.clone().acquire_owned().await else { return };
            let host = host.clone();
            tokio::spawn(async move {
                host.invoke(queue, message).await;
                drop(permit);
            });
        }
        let wait = next
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .unwrap_or(Duration::from_millis(50))
            .min(Duration::from_millis(50));
        let _ = tokio::time::timeout(wait, host.wake.notified()).await;
    }
}
