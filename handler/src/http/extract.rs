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
/// no version, so a list of weak tags alone never matches. A value that is not `*` or a list of entity tags
/// names no version this server gave out either: the precondition cannot hold (412), as for a stale tag.
pub struct IfMatch(pub Option<Vec<Version>>);

/// The strong tags of a header value (`None` for `*`), or `Err` when it is not `*` or entity tags (`"..."` or
/// `W/"..."`, of visible ASCII without `"`) separated by commas.
fn entity_tags(text: &str) -> Result<Option<Vec<Version>>, ()> {
    if text.trim() == "*" {
        return Ok(None);
    }
    let mut strong = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (weak, tag) = match tag.strip_prefix("W/") {
            Some(tag) => (true, tag),
            None => (false, tag),
        };
        let inner = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or(())?;
        if !inner.bytes().all(|b| b == b'!' || (b'#'..=b'~').contains(&b)) {
            return Err(());
        }
        if !weak {
            strong.push(Version(inner.to_owned()));
        }
    }
    Ok(Some(strong))
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // A header with no tag (empty, or commas alone) says nothing; one that names no version (malformed) is a
        // list that matches none.
        let values: Vec<&str> = parts
            .headers
            .get_all(header::IF_MATCH)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{0}"))
            .filter(|v| !v.chars().all(|c| c == ',' || c.is_whitespace()))
            .collect();
        if values.is_empty() {
            return Ok(IfMatch(None));
        }
        let mut versions = Vec::new();
        for value in &values {
            match entity_tags(value) {
                // `*` stands alone (RFC 9110 §13.1.1).
                Ok(None) if values.len() == 1 => return Ok(IfMatch(None)),
                Ok(None) | Err(()) => return Ok(IfMatch(Some(Vec::new()))),
                Ok(Some(tags)) => versions.extend(tags),
            }
        }
        Ok(IfMatch(Some(versions)))
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
                    "The ETag as last read: the change is made only if it is still that version (412 if not)"
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

/// A JSON merge patch (RFC 7396) of a resource's configuration `C`: any of its fields; `null` removes an optional
/// one (and an entry of a map). A webhook's patterns and credentials are replaced whole
/// (`WebhookConfig::REPLACED_WHOLE`).
pub struct MergePatch<C>(PhantomData<C>);

impl<C: JsonSchema> JsonSchema for MergePatch<C> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}Patch", C::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = serde_json::to_value(C::json_schema(generator)).unwrap_or_default();
        schemars::Schema::try_from(merge_patch_schema(schema)).unwrap_or_default()
    }
}

/// The schema of a merge patch of documents of `schema` (an object schema): every field optional, the optional
/// ones nullable (`null` removes them), and the values of the maps among them nullable too.
fn merge_patch_schema(mut schema: Value) -> Value {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.remove("required");
        object.remove("title");
        if let Some(Value::Object(properties)) = object.get_mut("properties") {
            for (name, property) in properties.iter_mut() {
                if dispatcher_core::model::WebhookConfig::REPLACED_WHOLE.contains(&name.as_str()) {
                    if !required.contains(name) {
                        let original = std::mem::take(property);
                        *property = serde_json::json!({"anyOf": [original, {"type": "null"}]});
                    }
                    continue;
                }
                // A map's entries may be null too (removed), whether the map itself is nullable (`anyOf`) or not.
                let map = match property.pointer_mut("/anyOf/0/additionalProperties").is_some() {
                    true => property.pointer_mut("/anyOf/0/additionalProperties"),
                    false => property.get_mut("additionalProperties"),
                };
                if let Some(Value::Object(map)) = map {
                    let values = Value::Object(std::mem::take(map));
                    *map = serde_json::json!({"anyOf": [values, {"type": "null"}]})
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                }
                if !required.contains(name) {
                    let original = std::mem::take(property);
                    *property = serde_json::json!({"anyOf": [original, {"type": "null"}]});
                }
            }
        }
    }
    schema
}

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
                    // Beside a `$ref` (an internally tagged variant: its tag), properties and required fields add up.
                    for (key, value) in fields {
                        match (object.get_mut(&key), value) {
                            (Some(Value::Object(mine)), Value::Object(theirs)) if key == "properties" => {
                                theirs.into_iter().for_each(|(k, v)| {
                                    mine.entry(k).or_insert(v);
                                });
                            }
                            (Some(Value::Array(mine)), Value::Array(theirs)) if key == "required" => {
                                theirs
                                    .into_iter()
                                    .filter(|v| !mine.contains(v))
                                    .collect::<Vec<_>>()
                                    .into_iter()
                                    .for_each(|v| mine.push(v));
                            }
                            (Some(_), _) => {}
                            (None, value) => {
                                object.insert(key, value);
                            }
                        }
                    }
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
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    #[schemars(regex(pattern = crate::ports::CURSOR_PATTERN))]
    pub cursor: Option<String>,
}

/// A page's size: 50 when not given, refused outside 1 to 500.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(50) {
        limit @ 1..=500 => Ok(limit),
        other => {
            let report = Report::single("limit", format!("{other} is out of range: 1 to 500"));
            Err(ApiError::invalid("invalid-query", "the query is invalid", report))
        }
    }
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit)
    }

    /// The cursor given; an empty one is the first page, as no cursor is.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
    }
}

/// A webhook's deliveries: the paging of [`PageQuery`], and `?status=` for those in one status only. (Not a
/// flattened `PageQuery`: a query string read through `#[serde(flatten)]` cannot hold a number.)
#[derive(Deserialize, JsonSchema)]
pub struct DeliveriesQuery {
    /// How many items, 1 to 500 (default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    #[schemars(regex(pattern = crate::ports::CURSOR_PATTERN))]
    pub cursor: Option<String>,
    /// Only the deliveries in this status.
    pub status: Option<dispatcher_core::model::Status>,
}

impl DeliveriesQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        page_limit(self.limit)
    }

    /// The cursor given; an empty one is the first page, as no cursor is.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref().filter(|c| !c.is_empty())
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
