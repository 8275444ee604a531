//! Who is calling, decided once for every API request: the operator's key (`x-functions-key`, or `?code=`),
//! compared in constant time, or a tenant's token (`Authorization: Bearer dtk_…`), verified by the service.
//! Without a configured key (local mode's default) a request without a token is the operator's. Handlers take
//! the result as [`Caller`]; the service decides what it may do.

use super::problem::ApiError;
use crate::service::Service;
use aide::generate::GenContext;
use aide::openapi::Operation;
use aide::OperationInput;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dispatcher_core::model::Access;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The operator's key. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

fn unauthorized(detail: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response()
}

/// Decides who the caller is and lets the request through with it, or answers 401 (403 for a disabled tenant).
pub async fn authenticate(
    State((service, key)): State<(Arc<Service>, Option<ApiKey>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let given_key = headers.get("x-functions-key").and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
        request.uri().query().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("code="))).map(str::to_owned)
    });
    let bearer = headers.get(header::AUTHORIZATION).map(|v| {
        let text = v.to_str().unwrap_or_default();
        text.strip_prefix("Bearer ").or_else(|| text.strip_prefix("bearer ")).unwrap_or_default().trim().to_owned()
    });
    let access = match (given_key, bearer, &key) {
        // Compared as digests: equal lengths, so the comparison tells nothing of the key's length either.
        (Some(given), _, Some(expected)) => match bool::from(digest(&given).ct_eq(&digest(&expected.0))) {
            true => Access::Operator,
            false => return unauthorized("the key in x-functions-key is wrong"),
        },
        (_, Some(token), _) => match service.authenticate(&token).await {
            Ok(access) => access,
            Err(error) => return ApiError::from(error).into_response(),
        },
        (_, None, None) => Access::Operator,
        (None, None, Some(_)) => return unauthorized(
            "no credential: send the operator's key in x-functions-key, or a tenant's token as Authorization: Bearer",
        ),
    };
    request.extensions_mut().insert(access);
    next.run(request).await
}

fn digest(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Who is calling, as [`authenticate`] decided.
pub struct Caller(pub Access);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Only a route outside the authenticated router could lack it: refused, never taken for the operator.
        let access = parts.extensions.get::<Access>().cloned();
        access.map(Caller).ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "no credential"))
    }
}

impl OperationInput for Caller {
    fn operation_input(_ctx: &mut GenContext, _operation: &mut Operation) {}
}
