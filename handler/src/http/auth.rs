//! The API key: on Azure the Functions host checks the function key before a request reaches the handler;
//! locally, when `DISPATCHER_API_KEY` is set, the handler checks it itself, from the same `x-functions-key`
//! header (or `?code=`), compared in constant time.

use super::problem::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The key every API call must carry. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Lets a request through when no key is configured, or when it carries the key.
pub async fn require_key(State(key): State<Option<ApiKey>>, request: Request, next: Next) -> Response {
    let Some(expected) = key else { return next.run(request).await };
    let from_header = request.headers().get("x-functions-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let from_query =
        request.uri().query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("code="))).map(str::to_owned);
    let given = from_header.or(from_query).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(expected.0.as_bytes())) {
        next.run(request).await
    } else {
        let detail = "missing or wrong API key: send it in the x-functions-key header";
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response()
    }
}
