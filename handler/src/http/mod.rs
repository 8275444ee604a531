//! The management and publish API under `/api/v1`, the same locally and on Azure: routes grouped by resource
//! (`events.rs`, `webhooks.rs`, `deliveries.rs`), each a thin translation of a request into a service call and
//! of its answer into a view (`views.rs`) or problem details (`problem.rs`). The OpenAPI document is generated
//! by aide from the same routes and the schemars types they take and answer: served at
//! `GET /api/v1/openapi.json` and committed as `schemas/openapi.json`. `GET /metrics` serves the metrics for
//! Prometheus, outside the API's document; the portal's page is served beside them.

mod answer;
mod auth;
mod deliveries;
mod events;
mod extract;
mod problem;
mod sources;
mod tenants;
mod views;
mod webhooks;

pub use auth::ApiKey;
use auth::Caller;
pub use problem::ApiError;

use crate::service::{Info, Service};
use aide::axum::routing::get_with;
use aide::axum::ApiRouter;
use aide::openapi::{ApiKeyLocation, Info as ApiInfo, OpenApi, ReferenceOr, SecurityScheme, StatusCode as ApiStatus};
use aide::transform::{TransformOpenApi, TransformOperation};
use answer::Answer;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Router;
use dispatcher_core::events::MAX_EVENT_BYTES;
use std::sync::{Arc, OnceLock};

type AppState = Arc<Service>;

/// Runs each request in a task of `tasks`, so that it finishes even when its connection goes away: a
/// function invocation cut short mid-attempt (a host stopping the handler may close it) has its message
/// delivered again and the attempt made twice, and an event cut short between logging its deliveries and
/// queueing them leaves them waiting for their lease to run out. Shutting down waits for the tasks.
pub async fn run_to_completion(
    axum::extract::State(tasks): axum::extract::State<tokio_util::task::TaskTracker>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tasks.spawn(next.run(request)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(%error, "a request's task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The API router, with the key check when a key is configured, and the portal (`crate::portal`), whose
/// page needs no key: the calls it makes carry one.
pub fn router(service: Arc<Service>, key: Option<ApiKey>) -> Router {
    let mut api = OpenApi::default();
    routes()
        .finish_api_with(&mut api, describe)
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint; see /api/v1/openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this endpoint does not take that method; see /api/v1/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES + 1))
        .layer(axum::middleware::from_fn_with_state((service.clone(), key), auth::authenticate))
        .merge(sources::inbound().finish_api(&mut OpenApi::default()))
        .merge(crate::portal::router())
        .with_state(service)
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> OpenApi {
    let mut api = OpenApi::default();
    let _ = routes().merge(sources::inbound()).finish_api_with(&mut api, describe);
    api
}

/// The OpenAPI 3.1 document as JSON, served and committed (`schemas/openapi.json`).
pub fn openapi_json() -> serde_json::Value {
    let mut document = serde_json::to_value(openapi()).unwrap_or_default();
    tuples_as_2020_12(&mut document);
    document
}

/// aide generates schemas as draft-07 writes them, which OpenAPI 3.1 (JSON Schema 2020-12) reads the same but
/// for tuples: `"items": [..], "additionalItems": false` becomes `"prefixItems": [..], "items": false`.
fn tuples_as_2020_12(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            if let Some(serde_json::Value::Array(_)) = object.get("items") {
                let tuple = object.remove("items").unwrap_or_default();
                object.insert("prefixItems".to_owned(), tuple);
                let rest = object.remove("additionalItems").unwrap_or(serde_json::Value::Bool(true));
                object.insert("items".to_owned(), rest);
            }
            object.values_mut().for_each(tuples_as_2020_12);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(tuples_as_2020_12),
        _ => {}
    }
}

/// The document as served, generated once.
fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(openapi_json)
}

fn routes() -> ApiRouter<AppState> {
    aide::generate::extract_schemas(true);
    ApiRouter::new()
        .api_route(
            "/api/v1/info",
            get_with(info, |op| op.id("getInfo").summary("The dispatcher's name, version, mode and counters")),
        )
        .api_route("/api/v1/openapi.json", get_with(serve_openapi, |op| op.id("getOpenApi").summary("This document")))
        // For Prometheus, not part of the API contract: left out of the document.
        .route("/metrics", axum::routing::get(metrics))
        .merge(events::routes())
        .merge(webhooks::routes())
        .merge(deliveries::routes())
        .merge(tenants::routes())
        .merge(sources::routes())
}

/// The counters are the operator's: a tenant sees the name, version and mode only.
async fn info(State(service): State<AppState>, Caller(access): Caller) -> Answer<200, Info> {
    Answer(service.info(&access))
}

/// Every metric in the Prometheus text format (`telemetry`, `service::metrics`); the operator's only.
async fn metrics(
    State(service): State<AppState>,
    Caller(access): Caller,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    crate::service::require_operator(&access, "reading metrics")?;
    service.observe().await?;
    let text = crate::telemetry::render();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

async fn serve_openapi() -> Answer<200, serde_json::Value> {
    Answer(document().clone())
}

/// The statuses every route may answer besides its own: a missing or wrong credential, one that may not do this
/// (a disabled tenant's, a tenant's on the operator's routes, a read-only one's change), and a store or queue
/// that is down.
const ALWAYS: [u16; 3] = [401, 403, 503];

/// Documents that `op` answers problem details with each of `statuses`.
fn errors<'t>(mut op: TransformOperation<'t>, statuses: &[u16]) -> TransformOperation<'t> {
    add_errors(op.inner_mut(), statuses);
    op
}

fn add_errors(operation: &mut aide::openapi::Operation, statuses: &[u16]) {
    let responses = operation.responses.get_or_insert_with(Default::default);
    for &status in statuses {
        let description = match status {
            400 => "The request is invalid: every problem, with where it is",
            401 => "The credential is missing, wrong, expired or revoked (when one is required)",
            403 => "The credential may not do this: a tenant's (operator only), a read-only one, a disabled tenant's",
            404 => "No such webhook, delivery or tenant (or not one this credential may see)",
            422 => "The request fits the schema but contradicts what is stored: a tenant that does not exist, an attribute value outside the tenant's grants",
            409 => "The request conflicts with the current state",
            412 => "The webhook changed since the version given in If-Match: read it again and retry",
            413 => "The body is over 256 KiB",
            415 => "The body is not application/json",
            503 => "The store or the queue is unavailable; try again",
            _ => "An error",
        };
        let response = aide::generate::in_context(|ctx| problem::response(ctx, description));
        responses.responses.insert(ApiStatus::Code(status), ReferenceOr::Item(response));
    }
}

fn describe(api: TransformOpenApi<'_>) -> TransformOpenApi<'_> {
    let key = SecurityScheme::ApiKey {
        location: ApiKeyLocation::Header,
        name: "x-functions-key".into(),
        description: Some(
            "The function key on Azure; locally, DISPATCHER_API_KEY when it is set (also accepted as ?code=).".into(),
        ),
        extensions: Default::default(),
    };
    let mut api = api
        .info(ApiInfo {
            title: "Public event dispatcher API".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "Publish events and manage webhooks. Errors are application/problem+json (RFC 9457).".into(),
            ),
            ..Default::default()
        })
        .security_scheme("functionKey", key)
        .security_requirement("functionKey");
    // The key is optional locally (when no DISPATCHER_API_KEY is set): an empty requirement says so.
    api.inner_mut().security.push(Default::default());
    let paths = api.inner_mut().paths.iter_mut().flat_map(|paths| paths.paths.values_mut());
    for path in paths.filter_map(|item| item.as_item_mut()) {
        let operations = [&mut path.get, &mut path.put, &mut path.post, &mut path.delete, &mut path.patch];
        for operation in operations.into_iter().flatten() {
            add_errors(operation, &ALWAYS);
        }
    }
    api
}
