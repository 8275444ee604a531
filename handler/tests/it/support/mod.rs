//! Test support: the real `handler` binary as a separate process, and real HTTP receivers to deliver to; the
//! local Cosmos DB server (`cosmos.rs`) and the Service Bus broker (`servicebus.rs`).
#![allow(dead_code)]

pub mod browser;
pub mod job;

pub use testkit::{cosmos, oidc, servicebus, temp_dir};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A webhook registered with `config` (its JSON), signing with a secret derived from its id, created at 0.
pub fn webhook(id: &str, config: Value) -> dispatcher_core::model::Webhook {
    use dispatcher_core::model::{Secret, Webhook, WebhookConfig};
    Webhook::new(id.into(), WebhookConfig::decode(&config).unwrap(), Secret::from_key(id.as_bytes()), 0)
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Verifies the Standard Webhooks signature with an independent implementation (the `standardwebhooks` crate).
    pub fn verify(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret).unwrap().verify(&self.body, &self.headers).is_ok()
    }
}

/// How a receiver path answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub status: u16,
    pub delay: Duration,
    /// The first this many requests get 503.
    pub fail_first: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { status: 200, delay: Duration::ZERO, fail_first: 0 }
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    behaviours: HashMap<String, Behaviour>,
    counts: HashMap<String, usize>,
}

/// HTTP receivers on one port; each path (`/wh1`, `/failing`, ...) behaves as told.
#[derive(Clone)]
pub struct Receivers {
    pub base: String,
    log: Arc<Mutex<Log>>,
}

impl Receivers {
    pub async fn start() -> Receivers {
        let log: Arc<Mutex<Log>> = Arc::default();
        let app = Router::new().route("/{path}", post(receive)).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receivers { base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    pub fn behave(&self, path: &str, behaviour: Behaviour) {
        self.log.lock().unwrap().behaviours.insert(format!("/{path}"), behaviour);
    }

    /// What `path` received so far, in arrival order.
    pub fn at(&self, path: &str) -> Vec<Received> {
        let path = format!("/{path}");
        self.log.lock().unwrap().received.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// How many requests reached `path` so far, answered or still being answered.
    pub fn arrived(&self, path: &str) -> usize {
        self.log.lock().unwrap().counts.get(&format!("/{path}")).copied().unwrap_or(0)
    }

    pub fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }
}

async fn receive(
    State(log): State<Arc<Mutex<Log>>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = format!("/{path}");
    let (behaviour, n) = {
        let mut log = log.lock().unwrap();
        let behaviour = log.behaviours.get(&path).copied().unwrap_or_default();
        let n = {
            let count = log.counts.entry(path.clone()).or_default();
            *count += 1;
            *count
        };
        (behaviour, n)
    };
    tokio::time::sleep(behaviour.delay).await;
    // Only what was answered counts as received: a timed-out request is dropped before it gets here.
    log.lock().unwrap().received.push(Received { path, headers, body, at: Instant::now() });
    if n <= behaviour.fail_first {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::from_u16(behaviour.status).unwrap()
    }
}

/// A `handler local` process.
pub struct Dispatcher {
    pub child: Child,
    pub api: String,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    pub client: reqwest::Client,
    args: Vec<String>,
    env: Vec<(String, String)>,
    key: Option<String>,
}

impl Dispatcher {
    /// Starts `handler local --port 0` on a data dir of its own, with `args` and `env` added.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Dispatcher {
        let dir = temp_dir(name);
        Dispatcher::start_on(&dir.join("data"), &dir.join("handler.log"), args, env)
    }

    /// Starts `handler local --port 0` on `data_dir`, logging to `log_file`.
    pub fn start_on(
        data_dir: &std::path::Path,
        log_file: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Dispatcher {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let (data_dir, log_file) = (data_dir.to_path_buf(), log_file.to_path_buf());
        let (child, api) = spawn(&data_dir, &log_file, &args, &env);
        let key = env.iter().find(|(k, _)| k == "DISPATCHER_API_KEY").map(|(_, v)| v.clone());
        Dispatcher {
            child,
            api,
            data_dir,
            log_file,
            client: dispatcher::adapters::tls::client().unwrap(),
            args,
            env,
            key,
        }
    }

    /// Starts again on the same data dir, as after a crash or a deploy.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, api) = spawn(&self.data_dir, &self.log_file, &self.args, &self.env);
        self.child = child;
        self.api = api;
    }

    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_file).unwrap_or_default()
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, format!("{}{path}", self.api));
        match &self.key {
            Some(key) => builder.header("x-functions-key", key),
            None => builder,
        }
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method.parse().unwrap(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Registers a webhook; returns its id and signing secret.
    pub async fn register(&self, body: Value) -> (String, String) {
        let (status, created) = self.call("POST", "/webhooks", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
    }

    /// The last attempt of the newest delivery of `webhook`, once it has one (waiting up to 20 s).
    pub async fn last_attempt(&self, webhook: &str) -> Value {
        let path = format!("/webhooks/{webhook}/deliveries");
        let start = Instant::now();
        loop {
            let deliveries = self.get(&path).await;
            let attempts = deliveries["items"][0]["attempts"].as_array().cloned().unwrap_or_default();
            if let Some(last) = attempts.last() {
                return last.clone();
            }
            assert!(start.elapsed() < Duration::from_secs(20), "no attempt of {webhook}'s delivery: {deliveries}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn publish(&self, event: Value) -> Value {
        let (status, body) = self.call("POST", "/events", Some(event)).await;
        assert_eq!(status, 202, "{body}");
        body
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The handler's side of a failed test is the first thing one wants to read.
            eprintln!("--- handler logs ({}) ---\n{}", self.log_file.display(), self.logs());
        }
    }
}

/// Waits for `condition` to hold, polling, and fails with `what` after `deadline`. Never a fixed sleep.
pub async fn eventually<F: FnMut() -> bool>(what: &str, deadline: Duration, mut condition: F) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`eventually`], for conditions that ask the dispatcher.
pub async fn eventually_async<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn(
    data_dir: &std::path::Path,
    log_file: &std::path::Path,
    args: &[String],
    env: &[(String, String)],
) -> (Child, String) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_file).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command.envs(env.iter().cloned()).stderr(log);
    testkit::handler::start_local(command, data_dir, args)
        .unwrap_or_else(|problem| panic!("{problem}; log: {}", std::fs::read_to_string(log_file).unwrap_or_default()))
}

/// The delivery ids of the "attempted" lines of JSON `logs`, sorted; fails when a line is not in exactly one
/// span, its delivery's (a span entered across an await leaks into other deliveries' lines).
pub fn attempt_log_ids(logs: &str) -> Vec<String> {
    let lines = logs.lines().map(|line| serde_json::from_str::<Value>(line).unwrap());
    let mut ids: Vec<String> = lines
        .filter(|line| line["fields"]["message"] == "attempted")
        .map(|line| {
            let spans = line["spans"].as_array().unwrap();
            assert_eq!(spans.len(), 1, "one span per attempt line: {line}");
            assert_eq!(spans[0]["name"], "delivery", "{line}");
            spans[0]["delivery_id"].as_str().unwrap().to_owned()
        })
        .collect();
    ids.sort();
    ids
}
