//! Webhook receivers: record when each delivery (by `webhook-id`) arrived, and how many times.

use axum::extract::Request;
use axum::handler::HandlerWithoutStateExt;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

#[derive(Default)]
pub struct Arrivals {
    /// Delivery id → (times received, first arrival).
    pub by_id: HashMap<String, (u32, Instant)>,
    pub total: u64,
}

#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    pub arrivals: Arc<Mutex<Arrivals>>,
    gate: watch::Sender<bool>,
}

#[derive(Clone)]
struct Shared {
    arrivals: Arc<Mutex<Arrivals>>,
    gate: watch::Receiver<bool>,
}

impl Receiver {
    /// Starts receivers on a free port; with `open` false they hold every request until [`Receiver::open`].
    pub async fn start(open: bool) -> anyhow::Result<Receiver> {
        let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
        let (gate, gate_rx) = watch::channel(open);
        let shared = Shared { arrivals: arrivals.clone(), gate: gate_rx };
        // One handler for every path, without a router: the receivers share the machine with the handler under
        // test, so what they cost is taken from it.
        let app = move |request: Request| receive(shared.clone(), request);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app.into_make_service()).await });
        Ok(Receiver { base, arrivals, gate })
    }

    pub fn open(&self) {
        let _ = self.gate.send(true);
    }

    pub fn total(&self) -> u64 {
        self.arrivals.lock().map(|a| a.total).unwrap_or(0)
    }
}

async fn receive(mut shared: Shared, request: Request) -> StatusCode {
    let _ = shared.gate.wait_for(|open| *open).await;
    let now = Instant::now();
    let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if let Ok(mut arrivals) = shared.arrivals.lock() {
        arrivals.total += 1;
        arrivals.by_id.entry(id).and_modify(|(n, _)| *n += 1).or_insert((1, now));
    }
    StatusCode::NO_CONTENT
}
