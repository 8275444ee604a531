//! `handler serve`: the custom handler the Functions host starts (contract §1): it binds
//! 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT, answers `GET /` at once (the host's readiness probe), and takes
//! the invocations of the functions at `POST /{FunctionName}`. Cosmos DB is connected on first use and again
//! after a failure, so a slow or absent database never delays readiness.

use super::incoming::on_incoming_event;
use super::invocation::Invocation;
use crate::delivery::sender::now_ms;
use crate::local::WebhookSet;
use crate::store::cosmos::{CosmosConfig, CosmosStore};
use crate::store::{StoreError, Webhooks};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything `handler serve` is configured with (app settings, see `main.rs`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub port: u16,
    pub cosmos: CosmosConfig,
    /// How long the webhooks read from Cosmos DB are used before they are read again.
    pub webhook_cache: Duration,
}

pub struct Functions {
    config: ServeConfig,
    store: tokio::sync::OnceCell<CosmosStore>,
    webhooks: Mutex<Option<(Instant, Arc<WebhookSet>)>>,
}

impl Functions {
    pub fn new(config: ServeConfig) -> Arc<Functions> {
        Arc::new(Functions { config, store: tokio::sync::OnceCell::new(), webhooks: Mutex::default() })
    }

    async fn store(&self) -> Result<&CosmosStore, StoreError> {
        self.store.get_or_try_init(|| CosmosStore::connect(&self.config.cosmos)).await
    }

    /// The webhooks, read again once the cache is older than `webhook_cache`.
    async fn webhooks(&self) -> Result<Arc<WebhookSet>, StoreError> {
        let cached = self.webhooks.lock().ok().and_then(|c| c.clone());
        if let Some((_, set)) = cached.filter(|(at, _)| at.elapsed() < self.config.webhook_cache) {
            return Ok(set);
        }
        let set = Arc::new(WebhookSet::new(self.store().await?.list_webhooks().await?));
        if let Ok(mut cache) = self.webhooks.lock() {
            *cache = Some((Instant::now(), set.clone()));
        }
        Ok(set)
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new().route("/", get(|| async { "ready" })).route("/OnIncomingEvent", post(incoming)).with_state(self)
    }
}

/// What the host gets back: 2xx with the invocation's answer, or non-2xx (the message is retried).
fn answer(result: Result<serde_json::Value, (StatusCode, String)>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err((status, error)) => {
            tracing::error!(%error, "invocation failed; the host will retry the message");
            (status, Json(json!({"Outputs": {}, "Logs": [error], "ReturnValue": null}))).into_response()
        }
    }
}

async fn incoming(State(functions): State<Arc<Functions>>, body: Bytes) -> Response {
    let result = async {
        let invocation = Invocation::parse(&body).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        let unavailable = |e: StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
        let webhooks = functions.webhooks().await.map_err(unavailable)?;
        let store = functions.store().await.map_err(unavailable)?;
        let response = on_incoming_event(&invocation, &webhooks, store, now_ms()).await.map_err(unavailable)?;
        Ok(response.to_json())
    }
    .await;
    answer(result)
}
