//! The request parts the handlers take, each refusing a bad request with problem details (axum's own
//! extractors answer in plain text) and documenting itself in the OpenAPI document.

use super::problem::ApiError;
use crate::ports::Version;
use aide::generate::GenContext;
use aide::openapi::{
    MediaType, Operation, Parameter, ParameterData, ParameterSchemaOrContent, ReferenceOr, RequestBody, SchemaObject,
};
use aide::OperationInput;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use dispatcher_core::events::MAX_EVENT_BYTES;
use dispatcher_core::model::Report;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::marker::PhantomData;

/// Refuses a body that does not say it is JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    let detail = format!("the body must be application/json, not {content_type:?}");
    Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", detail))
}

fn too_large() -> ApiError {
    let detail = format!("the body is over the limit of {MAX_EVENT_BYTES} bytes (256 KiB)");
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail)
}

async fn bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::new(status, "unreadable-body", rejection.body_text()),
    })
}

fn request_body(ctx: &mut GenContext, operation: &mut Operation, json_schema: schemars::Schema, description: &str) {
    let media = MediaType {
        schema: Some(SchemaObject { json_schema, example: None, external_docs: None }),
        ..Default::default()
    };
    let body = RequestBody {
        description: Some(description.to_owned()),
        content: [("application/json".to_owned(), media)].into_iter().collect(),
        required: true,
        ..Default::default()
    };
    aide::operation::set_body(ctx, operation, body);
}

/// A JSON body, decoded by the service (which reports every problem); `S` is its documented schema.
pub struct JsonBody<S>(pub Value, pub PhantomData<S>);

impl<S, St: Send + Sync> FromRequest<St> for JsonBody<S> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &St) -> Result<Self, ApiError> {
        require_json(request.headers())?;
        let body = bytes(request, state).await?;
        let value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid("invalid-json", "the body is not valid JSON", Report::single("body", e.to_string()))
        })?;
        Ok(JsonBody(value, PhantomData))
    }
}

impl<S: JsonSchema> OperationInput for JsonBody<S> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = ctx.schema.subschema_for::<S>();
        request_body(ctx, operation, schema, "JSON");
    }
}

/// The versions a client changes (`If-Match`, RFC 9110 §13.1.1: the ETag of a previous answer, or a list of
/// them); absent, or `*`, changes whatever is stored. If-Match compares strongly: a weak tag (`W/"..."`) names
/// no version, so a list of weak tags alone never matches (412).
pub struct IfMatch(pub Option<Vec<Version>>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let invalid = || {
            let problem = "is not * or a list of entity tags (\"...\", as the ETag of a previous answer)";
            ApiError::invalid("invalid-if-match", "the If-Match header is invalid", Report::single("If-Match", problem))
        };
        let mut versions = Vec::new();
        let (mut present, mut tags, mut any) = (false, 0, false);
        for value in parts.headers.get_all(header::IF_MATCH) {
            present = true;
            for tag in value.to_str().map_err(|_| invalid())?.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                tags += 1;
                if tag == "*" {
                    any = true;
                    continue;
                }
                let (weak, tag) = match tag.strip_prefix("W/") {
                    Some(tag) => (true, tag),
                    None => (false, tag),
                };
                let inner = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).filter(|t| !t.contains('"'));
                let inner = inner.ok_or_else(invalid)?;
                if !weak {
                    versions.push(Version(inner.to_owned()));
                }
            }
        }
        // `*` stands alone (RFC 9110 §13.1.1); a header with no tag at all says nothing.
        if (present && tags == 0) || (any && tags > 1) {
            return Err(invalid());
        }
        if any {
            return Ok(IfMatch(None));
        }
        Ok(IfMatch(present.then_some(versions)))
    }
}

impl OperationInput for IfMatch {
    fn operation_input(_ctx: &mut GenContext, operation: &mut Operation) {
        let schema = SchemaObject {
            json_schema: schemars::json_schema!({"type": "string"}),
            example: None,
            external_docs: None,
        };
        let parameter = Parameter::Header {
            parameter_data: ParameterData {
                name: "If-Match".to_owned(),
                description: Some(
                    "The webhook's ETag as last read: the change is made only if it is still that version (412 if not)"
                        .to_owned(),
                ),
                required: false,
                deprecated: None,
                format: ParameterSchemaOrContent::Schema(schema),
                example: None,
                examples: Default::default(),
                explode: None,
                extensions: Default::default(),
            },
            style: Default::default(),
        };
        operation.parameters.push(ReferenceOr::Item(parameter));
    }
}

/// An event's exact body, kept as bytes: the event is decoded by the service, which records a refused one; a
/// body over the size limit arrives as `Err`, to be recorded too.
pub struct EventBody(pub Result<Bytes, ApiError>);

impl<St: Send + Sync> FromRequest<St> for EventBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &St) -> Result<Self, ApiError> {
        require_json(request.headers())?;
        Ok(EventBody(bytes(request, state).await))
    }
}

impl OperationInput for EventBody {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        let schema = ctx.schema.subschema_for::<IncomingEventSchema>();
        request_body(ctx, operation, schema, "An event of the catalog, at most 256 KiB");
    }
}

/// The JSON Schema of an incoming event, from the catalog.
pub struct IncomingEventSchema;

impl JsonSchema for IncomingEventSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IncomingEvent".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = dispatcher_core::events::docs::incoming_event_schema(false);
        schemars::Schema::try_from(schema).unwrap_or_default()
    }
}

/// The JSON Schema of a registration (`POST /webhooks`), which names the public events.
pub struct RegistrationSchema;

impl JsonSchema for RegistrationSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Registration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = dispatcher_core::webhooks::registration::registration_schema();
        schemars::Schema::try_from(without_meta(schema)).unwrap_or_default()
    }
}

/// The JSON Schema of a webhook's configuration (`PUT /webhooks/{id}`).
pub struct ConfigurationSchema;

impl JsonSchema for ConfigurationSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WebhookConfiguration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = dispatcher_core::webhooks::registration::schema();
        schemars::Schema::try_from(without_meta(schema)).unwrap_or_default()
    }
}

/// A JSON merge patch (RFC 7396) of a webhook's configuration: any of its fields; `null` removes one.
#[derive(JsonSchema)]
#[schemars(extend("type" = "object"))]
pub struct MergePatch {}

/// A standalone schema made embeddable: its `$defs` become inline, its `$schema` goes.
fn without_meta(mut schema: Value) -> Value {
    let defs = schema.as_object_mut().and_then(|s| {
        s.remove("$schema");
        s.remove("$defs")
    });
    if let Some(Value::Object(defs)) = defs {
        inline(&mut schema, &defs);
    }
    schema
}

fn inline(value: &mut Value, defs: &serde_json::Map<String, Value>) {
    match value {
        Value::Object(object) => {
            let target = object.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/"));
            if let Some(def) = target.and_then(|name| defs.get(name)) {
                let mut def = def.clone();
                inline(&mut def, defs);
                object.remove("$ref");
                if let Value::Object(fields) = def {
                    object.extend(fields);
                }
            } else {
                object.values_mut().for_each(|v| inline(v, defs));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| inline(v, defs)),
        _ => {}
    }
}

/// The `{id}` of a path.
#[derive(Deserialize, JsonSchema)]
pub struct IdPath {
    /// The webhook's, delivery's or tenant's id.
    pub id: String,
}

/// A path's `{id}`, refused with problem details when it cannot be read.
pub struct Id(pub String);

impl<St: Send + Sync> FromRequestParts<St> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let axum::extract::Path(IdPath { id }) =
            axum::extract::Path::<IdPath>::from_request_parts(parts, state).await.map_err(|rejection| {
                ApiError::invalid(
                    "invalid-path",
                    "the path is invalid",
                    Report::single("path.id", rejection.body_text()),
                )
            })?;
        Ok(Id(id))
    }
}

impl OperationInput for Id {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Path::<IdPath>::operation_input(ctx, operation);
    }
}

/// A path's parameters read as `T`, refused with problem details when they cannot be read.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, St: Send + Sync> FromRequestParts<St> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await.map_err(|rejection| {
                ApiError::invalid("invalid-path", "the path is invalid", Report::single("path", rejection.body_text()))
            })?;
        Ok(Path(value))
    }
}

impl<T: JsonSchema> OperationInput for Path<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Path::<T>::operation_input(ctx, operation);
    }
}

/// Paging of a list: `?limit=` (1 to 500, default 50) and `?cursor=` from the previous page's `nextCursor`.
#[derive(Deserialize, JsonSchema)]
pub struct PageQuery {
    /// How many items, 1 to 500 (default 50).
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}

/// A webhook's deliveries: the paging of [`PageQuery`], and `?status=` for those in one status only. (Not a
/// flattened `PageQuery`: a query string read through `#[serde(flatten)]` cannot hold a number.)
#[derive(Deserialize, JsonSchema)]
pub struct DeliveriesQuery {
    /// How many items, 1 to 500 (default 50).
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only the deliveries in this status.
    pub status: Option<dispatcher_core::model::Status>,
}

impl DeliveriesQuery {
    pub fn limit(&self) -> usize {
        PageQuery { limit: self.limit, cursor: None }.limit()
    }
}

/// A query string read as `T`, refused with problem details when it does not fit.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, St: Send + Sync> FromRequestParts<St> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await.map_err(|rejection| {
                ApiError::invalid(
                    "invalid-query",
                    "the query is invalid",
                    Report::single("query", rejection.body_text()),
                )
            })?;
        Ok(Query(value))
    }
}

impl<T: JsonSchema> OperationInput for Query<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Query::<T>::operation_input(ctx, operation);
    }
}
