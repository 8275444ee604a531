//! The success answers of the API: a JSON body with a status (200, 201 or 202), a webhook with its `ETag`, or
//! no body (204), each documenting itself with its status, schema and headers.

use crate::ports::Version;
use aide::generate::GenContext;
use aide::openapi::{
    Header, MediaType, Operation, ParameterSchemaOrContent, ReferenceOr, Response as ApiResponse, SchemaObject,
    StatusCode as ApiStatus,
};
use aide::OperationOutput;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

/// A JSON answer with status `N` (200, 201 or 202).
pub struct Answer<const N: u16, T>(pub T);

impl<const N: u16, T: Serialize> IntoResponse for Answer<N, T> {
    fn into_response(self) -> Response {
        (StatusCode::from_u16(N).unwrap_or(StatusCode::OK), Json(self.0)).into_response()
    }
}

fn json(json_schema: schemars::Schema, status: u16) -> ApiResponse {
    let media = MediaType {
        schema: Some(SchemaObject { json_schema, example: None, external_docs: None }),
        ..Default::default()
    };
    let description = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("").to_owned();
    ApiResponse {
        description,
        content: [("application/json".to_owned(), media)].into_iter().collect(),
        ..Default::default()
    }
}

impl<const N: u16, T: JsonSchema> OperationOutput for Answer<N, T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, _operation: &mut Operation) -> Option<ApiResponse> {
        let schema = ctx.schema.subschema_for::<T>();
        Some(json(schema, N))
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<ApiStatus>, ApiResponse)> {
        Self::operation_response(ctx, operation).map(|r| (Some(ApiStatus::Code(N)), r)).into_iter().collect()
    }
}

/// A 200 JSON answer showing a stored version of something (a webhook), with that version as its `ETag`:
/// sent back in `If-Match`, it makes a change fail with 412 when someone changed it meanwhile.
pub struct Tagged<T>(pub T, pub Version);

/// The entity tag of a version: the version quoted.
pub fn etag(version: &Version) -> String {
    format!("\"{}\"", version.0)
}

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut response = Answer::<200, T>(self.0).into_response();
        if let Ok(value) = HeaderValue::from_str(&etag(&self.1)) {
            response.headers_mut().insert(header::ETAG, value);
        }
        response
    }
}

impl<T: JsonSchema> OperationOutput for Tagged<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, _operation: &mut Operation) -> Option<ApiResponse> {
        let mut response = json(ctx.schema.subschema_for::<T>(), 200);
        let schema = SchemaObject {
            json_schema: schemars::json_schema!({"type": "string"}),
            example: None,
            external_docs: None,
        };
        let etag = Header {
            description: Some("The version shown; send it back in If-Match to change only this version".to_owned()),
            style: Default::default(),
            required: true,
            deprecated: None,
            format: ParameterSchemaOrContent::Schema(schema),
            example: None,
            examples: Default::default(),
            extensions: Default::default(),
        };
        response.headers.insert("ETag".to_owned(), ReferenceOr::Item(etag));
        Some(response)
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<ApiStatus>, ApiResponse)> {
        Self::operation_response(ctx, operation).map(|r| (Some(ApiStatus::Code(200)), r)).into_iter().collect()
    }
}

/// 204, no body.
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

impl OperationOutput for NoContent {
    type Inner = ();

    fn operation_response(_ctx: &mut GenContext, _operation: &mut Operation) -> Option<ApiResponse> {
        Some(ApiResponse { description: "No Content".to_owned(), ..Default::default() })
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<ApiStatus>, ApiResponse)> {
        Self::operation_response(ctx, operation).map(|r| (Some(ApiStatus::Code(204)), r)).into_iter().collect()
    }
}
