//! The management and publish API under `/api/v1`: the same paths locally and on Azure.
//!
//! [`routes`] is the one list of endpoints: the axum router and the OpenAPI document (`GET /api/v1/openapi.json`,
//! committed as `schemas/openapi.json`) are both built from it, with the request and response schemas of the
//! handlers' own types.

mod backend;
pub mod problem;
mod views;

pub use backend::{Backend, Store};
pub use views::InfoView;

use crate::delivery::sender::now_ms;
use crate::delivery::signing::Secret;
use crate::dispatch::DeliveryId;
use crate::events::{decode, MAX_EVENT_BYTES};
use crate::local::{new_webhook, random_id};
use crate::store::{PreviousSecret, Rejected, StoredWebhook, REJECTED_BODY_KEPT, SECRET_OVERLAP_MS};
use crate::validation::Report;
use crate::webhooks::config::decode_registration;
use crate::webhooks::WebhookConfig;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use problem::ApiError;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use views::*;

type AppState = Arc<dyn Backend>;
type ApiResult<T> = Result<T, ApiError>;
type SchemaFn = fn(&mut SchemaGenerator) -> schemars::Schema;

/// One endpoint: what the OpenAPI document says of it, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: (u16, Option<SchemaFn>),
    handler: MethodRouter<AppState>,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

fn route(method: Method, path: &'static str, summary: &'static str, handler: MethodRouter<AppState>) -> Route {
    Route { method, path, summary, request: None, response: (200, None), handler }
}

impl Route {
    fn takes(mut self, request: SchemaFn) -> Route {
        self.request = Some(request);
        self
    }

    fn answers(mut self, status: u16, body: Option<SchemaFn>) -> Route {
        self.response = (status, body);
        self
    }
}

fn handler<H, T>(method: &Method, h: H) -> MethodRouter<AppState>
where
    H: axum::handler::Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    on(filter, h)
}

/// Every endpoint, in the order the OpenAPI document lists them. Paths are relative to `/api/v1`.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/info", "The dispatcher's name, version, mode and counters", handler(&M::GET, info))
            .answers(200, Some(schema::<InfoView>)),
        route(M::GET, "/openapi.json", "This document", handler(&M::GET, openapi_json)),
        route(M::POST, "/events", "Publish an event; 202 once its deliveries are stored", handler(&M::POST, publish))
            .takes(|g| g.subschema_for::<IncomingEventSchema>())
            .answers(202, Some(schema::<AcceptedView>)),
        route(M::GET, "/events/catalog", "The event catalog and the mapping table", handler(&M::GET, catalog)),
        route(M::GET, "/events/rejected", "Rejected events, newest first", handler(&M::GET, rejected))
            .answers(200, Some(schema::<Page<RejectedView>>)),
        route(M::GET, "/webhooks", "All webhooks", handler(&M::GET, list_webhooks))
            .answers(200, Some(schema::<Vec<WebhookView>>)),
        route(
            M::POST,
            "/webhooks",
            "Register a webhook; the answer holds its signing secret",
            handler(&M::POST, create_webhook),
        )
        .takes(schema::<Registration>)
        .answers(201, Some(schema::<WebhookView>)),
        route(M::GET, "/webhooks/{id}", "One webhook", handler(&M::GET, get_webhook))
            .answers(200, Some(schema::<WebhookView>)),
        route(M::PUT, "/webhooks/{id}", "Replace a webhook's configuration", handler(&M::PUT, put_webhook))
            .takes(schema::<WebhookConfig>)
            .answers(200, Some(schema::<WebhookView>)),
        route(M::PATCH, "/webhooks/{id}", "Change some fields (JSON merge patch)", handler(&M::PATCH, patch_webhook))
            .answers(200, Some(schema::<WebhookView>)),
        route(
            M::DELETE,
            "/webhooks/{id}",
            "Delete a webhook; its pending deliveries end",
            handler(&M::DELETE, delete_webhook),
        )
        .answers(204, None),
        route(
            M::GET,
            "/webhooks/{id}/secret",
            "The signing secret (and the previous one during a rotation)",
            handler(&M::GET, get_secret),
        )
        .answers(200, Some(schema::<SecretView>)),
        route(
            M::POST,
            "/webhooks/{id}/rotate-secret",
            "A new signing secret; the old one keeps signing for 24 hours",
            handler(&M::POST, rotate_secret),
        )
        .answers(200, Some(schema::<SecretView>)),
        route(
            M::POST,
            "/webhooks/{id}/ping",
            "Deliver {\"name\":\"ping\",\"payload\":{}} to this webhook now",
            handler(&M::POST, ping_webhook),
        )
        .answers(202, Some(schema::<DeliveryQueuedView>)),
        route(
            M::GET,
            "/webhooks/{id}/deliveries",
            "A webhook's deliveries with their attempts, newest first",
            handler(&M::GET, list_deliveries),
        )
        .answers(200, Some(schema::<Page<DeliveryView>>)),
        route(M::GET, "/deliveries/{id}", "One delivery with every attempt", handler(&M::GET, get_delivery))
            .answers(200, Some(schema::<DeliveryView>)),
        route(
            M::POST,
            "/deliveries/{id}/retry",
            "Send a delivery again, with the same webhook-id",
            handler(&M::POST, retry_delivery),
        )
        .answers(202, Some(schema::<DeliveryQueuedView>)),
    ]
}

/// The API router, mounted at `/api/v1`.
pub fn router(app: AppState) -> Router {
    let mut v1 = Router::new();
    for route in routes() {
        v1 = v1.route(route.path, route.handler);
    }
    let v1 = v1
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such endpoint; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(MAX_EVENT_BYTES + 1))
        .layer(middleware::from_fn_with_state(app.clone(), require_key))
        .with_state(app);
    Router::new().nest("/api/v1", v1)
}

/// When an API key is configured, every call must carry it in `x-functions-key` (or `?code=`), as on Azure.
async fn require_key(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = app.api_key() else { return next.run(request).await };
    let from_header = request.headers().get("x-functions-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let from_query =
        request.uri().query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("code="))).map(str::to_owned);
    let given = from_header.or(from_query).unwrap_or_default();
    if constant_time_eq(given.as_bytes(), expected.0.as_bytes()) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key: send it in the x-functions-key header",
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The body as JSON, after checking that it says it is JSON.
fn json_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    require_json(headers)?;
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid("invalid-json", "the body is not valid JSON", Report::single("body", e.to_string()))
    })
}

fn require_json(headers: &HeaderMap) -> ApiResult<()> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("the body must be application/json, not {:?}", content_type),
        ))
    }
}

fn body_bytes(body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the body is over the limit of {MAX_EVENT_BYTES} bytes (256 KiB)"),
            )
        } else {
            ApiError::new(rejection.status(), "unreadable-body", rejection.body_text())
        }
    })
}

// Events.

async fn publish(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    require_json(&headers)?;
    let received_at_ms = now_ms();
    let reject = |problems: Report, body: &[u8]| {
        let app = app.clone();
        let kept = String::from_utf8_lossy(&body[..body.len().min(REJECTED_BODY_KEPT)]).into_owned();
        async move {
            let id = random_id("evt_").unwrap_or_default();
            tracing::warn!(event_id = %id, reason = %problems, "event rejected");
            app.reject(Rejected { id, received_at_ms, problems: problems.problems().to_vec(), body: kept }).await
        }
    };
    let body = match body_bytes(body) {
        Ok(body) => body,
        Err(error) => {
            if error.status == 413 {
                reject(Report::single("body", error.detail.clone()), b"").await?;
            }
            return Err(error);
        }
    };
    let event = match decode(&body) {
        Ok(event) => event,
        Err(report) => {
            reject(report.clone(), &body).await?;
            let status =
                if body.len() > MAX_EVENT_BYTES { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            let mut error = ApiError::invalid("invalid-event", "the event is invalid", report);
            error.status = status.as_u16();
            return Err(error);
        }
    };
    let header_text =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_owned);
    // An idempotency key makes a re-sent event yield the same delivery ids, which are stored once.
    let source_id = match header_text("idempotency-key") {
        Some(key) => key,
        None => {
            random_id("evt_").map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "random", e.to_string()))?
        }
    };
    let deliveries = app.publish(&event, &body, &source_id, header_text("x-correlation-id")).await?;
    let view = AcceptedView { id: source_id, deliveries };
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn catalog() -> Json<Value> {
    Json(crate::schemas::catalog())
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

async fn rejected(State(app): State<AppState>, Query(page): Query<PageQuery>) -> ApiResult<Json<Page<RejectedView>>> {
    let (items, next) = app.store().await?.list_rejected(page.limit(), page.cursor.as_deref()).await?;
    Ok(Json(Page { items: items.into_iter().map(RejectedView::from).collect(), next_cursor: next }))
}

// Webhooks.

async fn list_webhooks(State(app): State<AppState>) -> ApiResult<Json<Vec<WebhookView>>> {
    Ok(Json(app.store().await?.list_webhooks().await?.iter().map(|w| WebhookView::of(w, false)).collect()))
}

async fn create_webhook(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let value = json_body(&headers, &body)?;
    let (id, config) =
        decode_registration(&value).map_err(|r| ApiError::invalid("invalid-webhook", "the webhook is invalid", r))?;
    let random = |e: getrandom::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "random", e.to_string());
    let id = match id {
        Some(id) => {
            if app.store().await?.get_webhook(&id).await?.is_some() {
                return Err(ApiError::new(StatusCode::CONFLICT, "conflict", format!("webhook {id:?} already exists")));
            }
            id
        }
        None => random_id("wh_").map_err(random)?,
    };
    let webhook = new_webhook(id.into(), config).map_err(random)?;
    app.store().await?.put_webhook(&webhook).await?;
    app.webhooks_changed().await?;
    Ok((StatusCode::CREATED, Json(WebhookView::of(&webhook, true))).into_response())
}

async fn find(app: &AppState, id: &str) -> ApiResult<StoredWebhook> {
    app.store().await?.get_webhook(id).await?.ok_or_else(|| ApiError::not_found("webhook", id))
}

async fn get_webhook(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<WebhookView>> {
    Ok(Json(WebhookView::of(&find(&app, &id).await?, false)))
}

async fn save(app: &AppState, mut webhook: StoredWebhook, config: WebhookConfig) -> ApiResult<Json<WebhookView>> {
    if !config.disabled {
        webhook.disabled_reason = None;
    }
    webhook.config = config;
    webhook.updated_at_ms = now_ms();
    app.store().await?.put_webhook(&webhook).await?;
    app.webhooks_changed().await?;
    Ok(Json(WebhookView::of(&webhook, false)))
}

async fn put_webhook(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookView>> {
    let webhook = find(&app, &id).await?;
    let config = WebhookConfig::decode(&json_body(&headers, &body)?)
        .map_err(|r| ApiError::invalid("invalid-webhook", "the webhook is invalid", r))?;
    save(&app, webhook, config).await
}

async fn patch_webhook(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookView>> {
    let webhook = find(&app, &id).await?;
    let patch = json_body(&headers, &body)?;
    let mut merged = serde_json::to_value(&webhook.config)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    merge_patch(&mut merged, &patch);
    let config = WebhookConfig::decode(&merged)
        .map_err(|r| ApiError::invalid("invalid-webhook", "the patched webhook is invalid", r))?;
    save(&app, webhook, config).await
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(fields) = target {
        for (key, change) in changes {
            if change.is_null() {
                fields.remove(key);
            } else {
                merge_patch(fields.entry(key.clone()).or_insert(Value::Null), change);
            }
        }
    }
}

async fn delete_webhook(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if !app.store().await?.delete_webhook(&id).await? {
        return Err(ApiError::not_found("webhook", &id));
    }
    app.webhooks_changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_secret(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SecretView>> {
    Ok(Json(SecretView::of(&find(&app, &id).await?)))
}

async fn rotate_secret(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SecretView>> {
    let mut webhook = find(&app, &id).await?;
    let fresh =
        Secret::generate().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "random", e.to_string()))?;
    let now = now_ms();
    let old = std::mem::replace(&mut webhook.secret, fresh);
    webhook.previous_secret = Some(PreviousSecret { secret: old, expires_at_ms: now + SECRET_OVERLAP_MS });
    webhook.updated_at_ms = now;
    app.store().await?.put_webhook(&webhook).await?;
    app.webhooks_changed().await?;
    Ok(Json(SecretView::of(&webhook)))
}

async fn ping_webhook(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let webhook = find(&app, &id).await?;
    let id = app.deliver_now(&webhook, "ping", br#"{"name":"ping","payload":{}}"#.to_vec()).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryQueuedView { id })).into_response())
}

// Deliveries.

async fn list_deliveries(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> ApiResult<Json<Page<DeliveryView>>> {
    find(&app, &id).await?;
    let (items, next) = app.store().await?.list_deliveries(&id, page.limit(), page.cursor.as_deref()).await?;
    Ok(Json(Page { items: items.into_iter().map(DeliveryView::from).collect(), next_cursor: next }))
}

fn delivery_id(text: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(text).ok_or_else(|| ApiError::not_found("delivery", text))
}

async fn get_delivery(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<DeliveryView>> {
    let record = app
        .store()
        .await?
        .get_delivery(delivery_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery", &id))?;
    Ok(Json(DeliveryView::from(record)))
}

async fn retry_delivery(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let parsed = delivery_id(&id)?;
    let Some(record) = app.store().await?.get_delivery(parsed).await? else {
        return Err(ApiError::not_found("delivery", &id));
    };
    if !app.retry(&record).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "in-flight",
            format!("delivery {id:?} is being attempted right now"),
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(DeliveryQueuedView { id: parsed })).into_response())
}

async fn info(State(app): State<AppState>) -> Json<InfoView> {
    Json(app.info())
}

async fn openapi_json() -> Json<Value> {
    Json(openapi())
}

/// The OpenAPI 3.1 document of [`routes`].
pub fn openapi() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = serde_json::Map::new();
    for route in routes() {
        let mut operation = json!({
            "summary": route.summary,
            "operationId": format!("{} {}", route.method, route.path),
            "responses": {},
        });
        if let Some(request) = route.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": request(&mut generator)}}});
        }
        let (status, body) = route.response;
        let mut response =
            json!({"description": StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")});
        if let Some(body) = body {
            response["content"] = json!({"application/json": {"schema": body(&mut generator)}});
        }
        operation["responses"][status.to_string()] = response;
        operation["responses"]["default"] = json!({
            "description": "An error, with every problem found",
            "content": {"application/problem+json": {"schema": generator.subschema_for::<ApiError>()}},
        });
        let path = paths.entry(format!("/api/v1{}", route.path)).or_insert_with(|| json!({}));
        path[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut schemas = serde_json::Map::new();
    for (name, schema) in generator.take_definitions(true) {
        schemas.insert(name, schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Public event dispatcher API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Publish events and manage webhooks. On Azure every call needs the function key in x-functions-key; locally when DISPATCHER_API_KEY is set.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}},
        },
        "security": [{"functionKey": []}],
    })
}
