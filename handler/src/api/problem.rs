//! API errors, answered as `application/problem+json` (RFC 9457), naming the field and the reason.

use crate::store::StoreError;
use crate::validation::{Problem, Report};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiError {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every problem found in the request, each with where it is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
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

    pub fn invalid(kind: &str, what: &str, report: Report) -> ApiError {
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, kind, format!("{what}: {report}"));
        error.problems = report.problems().to_vec();
        error
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("{what} {id:?} does not exist"))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if let StoreError::BadCursor(_) = error {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid-cursor", error.to_string());
        }
        tracing::error!(%error, "store failure");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}
