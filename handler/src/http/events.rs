//! `/events`: publishing an event, previewing its routing, the catalog with the mapping table, and the rejected
//! events.

use super::answer::Answer;
use super::auth::Caller;
use super::extract::{EventBody, JsonBody, PageQuery, Query};
use super::problem::ApiError;
use super::views::{AcceptedView, Page, PreviewView, RejectedView, TriedView};
use super::{errors, AppState};
use crate::service::require_operator;
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use dispatcher_core::events::MAX_EVENT_BYTES;
use dispatcher_core::model::Problem;
use serde_json::Value;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/events",
            post_with(publish, |op| {
                errors(
                    op.id("publishEvent").summary("Publish an event; 202 once its deliveries are stored"),
                    &[400, 413, 415],
                )
            }),
        )
        .api_route(
            "/api/v1/events/preview",
            post_with(preview, |op| {
                errors(
                    op.id("previewEvent").summary(
                        "Which webhooks an event would reach, and the body each would receive; nothing is sent or kept",
                    ),
                    &[400, 413, 415],
                )
            }),
        )
        .api_route(
            "/api/v1/transforms/preview",
            post_with(try_transform, |op| {
                errors(
                    op.id("previewTransform").summary(
                        "What a transform not saved yet makes of an event, for a webhook with the given attributes",
                    ),
                    &[400, 415],
                )
            }),
        )
        .api_route(
            "/api/v1/events/catalog",
            get_with(catalog, |op| op.id("getCatalog").summary("The event catalog and the mapping table")),
        )
        .api_route(
            "/api/v1/events/rejected",
            get_with(rejected, |op| {
                errors(op.id("listRejectedEvents").summary("Rejected events, newest first"), &[400])
            }),
        )
}

async fn publish(
    State(service): State<AppState>,
    Caller(access): Caller,
    headers: HeaderMap,
    EventBody(body): EventBody,
) -> Result<Answer<202, AcceptedView>, ApiError> {
    require_operator(&access, "publishing events")?;
    let body = match body {
        Ok(body) => body,
        Err(error) => {
            if error.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() {
                service.reject(None, vec![Problem::new("body", error.detail.clone())], b"").await?;
            }
            return Err(error);
        }
    };
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_owned);
    let (key, correlation_id, traceparent) =
        (header("idempotency-key"), header("x-correlation-id"), header("traceparent"));
    match service.publish(&access, &body, key, correlation_id, traceparent).await {
        Ok(published) => Ok(Answer(AcceptedView { id: published.id, deliveries: published.deliveries })),
        Err(error) => {
            let error = ApiError::from(error);
            Err(if body.len() > MAX_EVENT_BYTES { error.with_status(StatusCode::PAYLOAD_TOO_LARGE) } else { error })
        }
    }
}

async fn preview(
    State(service): State<AppState>,
    Caller(access): Caller,
    EventBody(body): EventBody,
) -> Result<Answer<200, PreviewView>, ApiError> {
    Ok(Answer(service.preview(&access, &body?).await?.into()))
}

async fn catalog() -> Answer<200, Value> {
    Answer(dispatcher_core::events::docs::catalog())
}

async fn rejected(
    State(service): State<AppState>,
    Caller(access): Caller,
    Query(page): Query<PageQuery>,
) -> Result<Answer<200, Page<RejectedView>>, ApiError> {
    let found = service.rejected_events(&access, page.limit()?, page.cursor()).await?;
    Ok(Answer(Page::of(found, RejectedView::from)))
}

/// What `POST /transforms/preview` takes.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)] // documents the body; the service decodes it, reporting every problem
pub struct TransformTrial {
    /// The transform to try (see a webhook's `transform`).
    transform: dispatcher_core::template::Transform,
    /// An event as internal services send it.
    #[schemars(with = "super::extract::IncomingEventSchema")]
    event: Value,
    /// The webhook's attributes (none: null or left out).
    #[serde(default)]
    attributes: Option<std::collections::BTreeMap<String, String>>,
}

async fn try_transform(
    State(service): State<AppState>,
    Caller(_): Caller,
    JsonBody(body, _): JsonBody<TransformTrial>,
) -> Result<Answer<200, Vec<TriedView>>, ApiError> {
    Ok(Answer(service.try_transform(&body).await?.into_iter().map(TriedView::from).collect()))
}
