//! Every error answer, as `application/problem+json` (RFC 9457): what kind of problem, a readable detail, and
//! every problem found in the request with where it is. The service's errors are mapped here, once.

use crate::ports::{QueueError, StoreError};
use crate::service::{Invalid, ServiceError};
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as ApiResponse, SchemaObject, StatusCode as ApiStatus};
use aide::OperationOutput;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatcher_core::model::{Problem, Report};
use schemars::JsonSchema;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "Problem details")]
pub struct ApiError {
    /// A URI naming the kind of problem, e.g. `urn:dispatcher:problem:invalid-event`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What went wrong, in one sentence.
    pub detail: String,
    /// Every problem found in the request, each with where it is (empty when the request itself is not at fault).
    pub problems: Vec<Problem>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            kind: format!("urn:dispatcher:problem:{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            problems: Vec::new(),
        }
    }

    /// A request that is not valid: 400 with every problem.
    pub fn invalid(kind: &str, what: &str, report: Report) -> ApiError {
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, kind, format!("{what}: {report}"));
        error.problems = report.problems().to_vec();
        error
    }

    /// The same problem with another status (413 for an event over the size limit).
    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status.as_u16();
        self.title = status.canonical_reason().unwrap_or("Error").to_owned();
        self
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("{what} {id:?} does not exist"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::BadCursor(_) => {
                return ApiError::new(StatusCode::BAD_REQUEST, "invalid-cursor", error.to_string())
            }
            StoreError::Conflict(detail) => return ApiError::new(StatusCode::CONFLICT, "conflict", detail),
            _ => {}
        }
        tracing::error!(%error, "store failure");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", error.to_string())
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        match error {
            ServiceError::Store(error) | ServiceError::Queue(QueueError::Store(error)) => error.into(),
            ServiceError::Queue(QueueError::Unavailable(reason)) => {
                tracing::error!(%reason, "queue unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue-unavailable", reason)
            }
            ServiceError::Invalid { what, report } => {
                let kind = match what {
                    Invalid::Event => "invalid-event",
                    Invalid::Webhook | Invalid::PatchedWebhook => "invalid-webhook",
                    Invalid::Tenant | Invalid::PatchedTenant => "invalid-tenant",
                    Invalid::Credential => "invalid-credential-request",
                    Invalid::TransformTrial => "invalid-transform-trial",
                    Invalid::Source => "invalid-source",
                };
                let unprocessable = report.unprocessable();
                let error = ApiError::invalid(kind, &what.to_string(), report);
                match unprocessable {
                    true => error.with_status(StatusCode::UNPROCESSABLE_ENTITY),
                    false => error,
                }
            }
            ServiceError::NotFound { what, id } => ApiError::not_found(what, &id),
            ServiceError::Conflict(detail) => ApiError::new(StatusCode::CONFLICT, "conflict", detail),
            ServiceError::PreconditionFailed(detail) => {
                ApiError::new(StatusCode::PRECONDITION_FAILED, "precondition-failed", detail)
            }
            ServiceError::InFlight(detail) => ApiError::new(StatusCode::CONFLICT, "in-flight", detail),
            ServiceError::Unauthorized(detail) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail),
            ServiceError::Forbidden(detail) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail),
            ServiceError::Ungranted(report) => {
                let detail = "the webhook holds attribute values outside its tenant's grants";
                ApiError::invalid("ungranted-attribute", detail, report).with_status(StatusCode::UNPROCESSABLE_ENTITY)
            }
            ServiceError::WrongTenant(report) => {
                let detail = "the webhook names a tenant it cannot belong to";
                ApiError::invalid("wrong-tenant", detail, report).with_status(StatusCode::UNPROCESSABLE_ENTITY)
            }
            ServiceError::Internal(detail) => {
                tracing::error!(%detail, "internal failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

/// The documented answer of an error: problem details.
pub fn response(ctx: &mut GenContext, description: &str) -> ApiResponse {
    let json_schema = ctx.schema.subschema_for::<ApiError>();
    let media = MediaType {
        schema: Some(SchemaObject { json_schema, example: None, external_docs: None }),
        ..Default::default()
    };
    ApiResponse {
        description: description.to_owned(),
        content: [("application/problem+json".to_owned(), media)].into_iter().collect(),
        ..Default::default()
    }
}

/// Any handler's error: problem details, whatever the status (each route lists the statuses it answers).
impl OperationOutput for ApiError {
    type Inner = ApiError;

    fn operation_response(ctx: &mut GenContext, _operation: &mut Operation) -> Option<ApiResponse> {
        Some(response(ctx, "An error, with every problem found"))
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<ApiStatus>, ApiResponse)> {
        Self::operation_response(ctx, operation).map(|r| (None, r)).into_iter().collect()
    }
}
