//! `/sources` (the operator's): where providers' webhooks arrive and how they are verified; and the inbound
//! endpoint itself, `POST /in/{sourceId}`, which takes no API credential: the provider's signature is what
//! lets a request in (`service::sources`).

use super::answer::{Answer, NoContent};
use super::auth::Caller;
use super::extract::{Id, JsonBody, Path};
use super::problem::ApiError;
use super::{errors, AppState};
use crate::service::{timestamp, Received, ServiceError, Unreceived};
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatcher_core::inbound::SourceRecord;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest provider body taken: what leaves room for its event's name around it within the largest event.
pub const MAX_RECEIVED_BYTES: usize = dispatcher_core::events::MAX_EVENT_BYTES - 1024;

type Answered<const N: u16, T> = Result<Answer<N, T>, ApiError>;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/sources",
            get_with(list, |op| errors(op.id("listSources").summary("All inbound sources (operator only)"), &[403]))
                .post_with(create, |op| {
                    errors(
                        op.id("createSource").summary("Create a source providers post their webhooks to"),
                        &[400, 403, 409, 415],
                    )
                }),
        )
        .api_route(
            "/api/v1/sources/{id}",
            get_with(get, |op| errors(op.id("getSource").summary("One source, without its secrets"), &[403, 404]))
                .put_with(replace, |op| {
                    errors(
                        op.id("replaceSource")
                            .summary("Replace a source; its secrets left out keep the stored ones (same type)"),
                        &[400, 403, 404, 409, 415],
                    )
                })
                .delete_with(delete, |op| errors(op.id("deleteSource").summary("Delete a source"), &[403, 404])),
        )
}

/// The inbound endpoint, served outside the API's authentication (and its body limit of its own).
pub fn inbound() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/in/{sourceId}",
            post_with(receive, |op| {
                let mut op = op.id("receiveWebhook").summary(
                    "A provider's webhook to a source: verified, de-duplicated, published as `<sourceId>:<type>`; \
                     2xx once queued. No API credential: the signature is the source's",
                );
                op.inner_mut().security = vec![Default::default()];
                errors(op, &[400, 404, 413])
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_RECEIVED_BYTES + 1))
}

/// A source as the API shows it: its configuration without its secrets (`verify.secretCount` says how many).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    id: String,
    /// Its verification as configured, without `secrets`.
    #[schemars(with = "VerifyView")]
    verify: Value,
    /// How far a signed timestamp may be from now.
    tolerance: String,
    disabled: bool,
    /// Where its provider posts.
    endpoint: String,
    created_at: String,
    updated_at: String,
}

/// A source's verification without its secrets.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct VerifyView {
    /// `stripe`, `github`, `standard-webhooks`, `hmac`, `basic` or `api-key`.
    #[serde(rename = "type")]
    kind: String,
    /// How many secrets it holds (two during a rotation).
    secret_count: usize,
}

impl SourceView {
    fn of(record: &SourceRecord) -> SourceView {
        let view = record.view();
        let source = record.source().ok();
        SourceView {
            id: record.id.clone(),
            verify: view.get("verify").cloned().unwrap_or_default(),
            tolerance: source.as_ref().map(|s| humantime::format_duration(s.tolerance).to_string()).unwrap_or_default(),
            disabled: source.is_some_and(|s| s.disabled),
            endpoint: format!("/api/v1/in/{}", record.id),
            created_at: timestamp(record.created_at_ms),
            updated_at: timestamp(record.updated_at_ms),
        }
    }
}

/// What a provider's request became.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedView {
    /// The event's id (the same for every repeat).
    id: String,
    /// `<sourceId>:<provider event type>`.
    event: String,
    /// A repeat of one already published: not published again.
    repeat: bool,
}

/// The JSON Schema of a source (`schemas/source.json`).
pub struct SourceSchema;

impl JsonSchema for SourceSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Source".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::try_from(dispatcher_core::inbound::source_schema(true)).unwrap_or_default()
    }
}

/// The JSON Schema of a replacement (`PUT /sources/{id}`): no `id` (the path's), secrets optional.
pub struct SourceConfigSchema;

impl JsonSchema for SourceConfigSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SourceConfiguration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::try_from(dispatcher_core::inbound::source_schema(false)).unwrap_or_default()
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourcePath {
    /// The source's id.
    pub source_id: String,
}

async fn list(State(service): State<AppState>, Caller(access): Caller) -> Answered<200, Vec<SourceView>> {
    Ok(Answer(service.list_sources(&access).await?.iter().map(SourceView::of).collect()))
}

async fn create(
    State(service): State<AppState>,
    Caller(access): Caller,
    JsonBody(body, _): JsonBody<SourceSchema>,
) -> Answered<201, SourceView> {
    Ok(Answer(SourceView::of(&service.create_source(&access, &body).await?)))
}

async fn get(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Answered<200, SourceView> {
    Ok(Answer(SourceView::of(&service.source(&access, &id).await?)))
}

async fn replace(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    JsonBody(body, _): JsonBody<SourceConfigSchema>,
) -> Answered<200, SourceView> {
    Ok(Answer(SourceView::of(&service.replace_source(&access, &id, &body).await?)))
}

async fn delete(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Result<NoContent, ApiError> {
    service.delete_source(&access, &id).await?;
    Ok(NoContent)
}

/// The provider's exact bytes, whatever its content type says (the signature covers the bytes).
pub struct RawBody(Result<Bytes, ApiError>);

impl<St: Send + Sync> FromRequest<St> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &St) -> Result<Self, ApiError> {
        let read = Bytes::from_request(request, state).await.map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the body is over the limit of {MAX_RECEIVED_BYTES} bytes"),
            ),
            status => ApiError::new(status, "unreadable-body", rejection.body_text()),
        });
        Ok(RawBody(read))
    }
}

impl aide::OperationInput for RawBody {}

/// A published event (202) or a repeat (200), documented as both.
pub enum ReceivedAnswer {
    Published(ReceivedView),
    Repeat(ReceivedView),
}

impl IntoResponse for ReceivedAnswer {
    fn into_response(self) -> Response {
        match self {
            ReceivedAnswer::Published(view) => Answer::<202, _>(view).into_response(),
            ReceivedAnswer::Repeat(view) => Answer::<200, _>(view).into_response(),
        }
    }
}

impl aide::OperationOutput for ReceivedAnswer {
    type Inner = ReceivedView;

    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        operation: &mut aide::openapi::Operation,
    ) -> Vec<(Option<aide::openapi::StatusCode>, aide::openapi::Response)> {
        let mut answers = Answer::<202, ReceivedView>::inferred_responses(ctx, operation);
        answers.extend(Answer::<200, ReceivedView>::inferred_responses(ctx, operation));
        answers
    }
}

async fn receive(
    State(service): State<AppState>,
    Path(path): Path<SourcePath>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<ReceivedAnswer, ApiError> {
    let body = body?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    match service.receive(&path.source_id, &header, &body, header("traceparent")).await {
        Ok(Received::Published { id, event }) => {
            Ok(ReceivedAnswer::Published(ReceivedView { id, event, repeat: false }))
        }
        Ok(Received::Repeat { id, event }) => Ok(ReceivedAnswer::Repeat(ReceivedView { id, event, repeat: true })),
        // The same answer whether the source does not exist or is disabled.
        Err(Unreceived::NoSource) => Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such source")),
        // The reason is the log's and the metrics': a caller probing the secret learns nothing.
        Err(Unreceived::Refused(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unverified",
            "the request's signature or credential does not verify for this source",
        )),
        Err(Unreceived::NotJson(report)) => {
            Err(ApiError::invalid("invalid-body", "the verified body is not JSON", report))
        }
        Err(Unreceived::Service(error @ ServiceError::Invalid { .. })) => Err(error.into()),
        // Who calls here holds no credential of ours: what failed inside is the log's, not theirs.
        Err(Unreceived::Service(error)) => {
            tracing::error!(source = %path.source_id, %error, "an inbound request could not be taken");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the request cannot be taken now: try again",
            ))
        }
    }
}
