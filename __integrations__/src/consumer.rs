//! The webhook consumer of the scenarios: receivers at `/{hook}` that record every request (headers, body,
//! arrival) and answer as told per hook (a status, a delay, failing the first k requests). Signatures are
//! checked with the `standardwebhooks` crate, an implementation independent of the dispatcher's.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a hook answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub status: u16,
    pub delay: Duration,
    /// The first this many requests get 503.
    pub fail_first: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { status: 204, delay: Duration::ZERO, fail_first: 0 }
    }
}

/// One request a hook received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the Standard Webhooks signature verifies with `secret` (`whsec_...`).
    pub fn verify(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret).is_ok_and(|w| w.verify(&self.body, &self.headers).is_ok())
    }
}

#[derive(Default)]
struct Hooks {
    received: HashMap<String, Vec<Received>>,
    behaviours: HashMap<String, Behaviour>,
    requests: HashMap<String, usize>,
}

#[derive(Clone)]
pub struct Consumer {
    pub base: String,
    hooks: Arc<Mutex<Hooks>>,
}

impl Consumer {
    /// Serves the hooks on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Consumer> {
        let hooks: Arc<Mutex<Hooks>> = Arc::default();
        let app = Router::new().route("/{hook}", post(receive)).with_state(hooks.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Consumer { base, hooks })
    }

    pub fn url(&self, hook: &str) -> String {
        format!("{}/{hook}", self.base)
    }

    pub fn behave(&self, hook: &str, behaviour: Behaviour) {
        if let Ok(mut hooks) = self.hooks.lock() {
            hooks.behaviours.insert(hook.to_owned(), behaviour);
        }
    }

    /// What `hook` received so far, in order.
    pub fn at(&self, hook: &str) -> Vec<Received> {
        self.hooks.lock().map(|h| h.received.get(hook).cloned().unwrap_or_default()).unwrap_or_default()
    }
}

async fn receive(
    State(hooks): State<Arc<Mutex<Hooks>>>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (behaviour, n) = match hooks.lock() {
        Ok(mut hooks) => {
            let behaviour = hooks.behaviours.get(&hook).copied().unwrap_or_default();
            let n = hooks.requests.entry(hook.clone()).or_default();
            *n += 1;
            (behaviour, *n)
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR,
    };
    tokio::time::sleep(behaviour.delay).await;
    if let Ok(mut hooks) = hooks.lock() {
        hooks.received.entry(hook).or_default().push(Received { headers, body });
    }
    if n <= behaviour.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
