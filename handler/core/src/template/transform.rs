//! A webhook's transform: a template from the body it would receive to the body it gets.

use super::{dynamic, json_text, Template, TemplateError, MAX_SOURCE_BYTES};
use crate::events::{Event, Payload, MAX_EVENT_BYTES};
use rhai::Dynamic;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a transform reads: `enrichment` is what the catalog's enrichers fetched for the event (`{}` when none).
pub const TRANSFORM_INPUTS: [&str; 5] = ["body", "attributes", "eventId", "correlationId", "enrichment"];

/// A transform as stored: its source, and the template compiled from it. A stored one that no longer compiles
/// (a later version of the engine) is still read, so that its webhook alone is affected: its deliveries die
/// with the reason, the other webhooks' go on.
#[derive(Clone)]
pub struct Transform {
    source: Arc<str>,
    compiled: Result<Template, TemplateError>,
}

impl Transform {
    /// Compiles `source`; what the API takes, refused when it does not compile.
    pub fn compile(source: &str) -> Result<Transform, TemplateError> {
        let template = Template::compile(source, &TRANSFORM_INPUTS)?;
        Ok(Transform { source: source.into(), compiled: Ok(template) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    fn template(&self) -> Result<&Template, TemplateError> {
        self.compiled.as_ref().map_err(Clone::clone)
    }

    /// The body this webhook gets instead of `body`; `None`: it does not want this event.
    pub fn apply(
        &self,
        body: &Value,
        attributes: &Value,
        event_id: &str,
        correlation_id: Option<&str>,
    ) -> Result<Option<Value>, TemplateError> {
        let (event_id, correlation_id) = (Value::from(event_id), correlation_id.map_or(Value::Null, Value::from));
        self.template()?.render(&[
            ("body", body),
            ("attributes", attributes),
            ("eventId", &event_id),
            ("correlationId", &correlation_id),
            ("enrichment", &Value::Object(serde_json::Map::new())),
        ])
    }

    /// [`Transform::apply`] to the delivery body of `event` for a webhook with `attributes` (the event without
    /// the attributes' keys), straight to the JSON text of the new body: what routing runs, without writing
    /// and reading the body once more. A body over the largest event accepted is a failure: queues and stores
    /// are sized for events.
    pub fn apply_to_event(
        &self,
        event: &Event,
        attributes: &BTreeMap<String, String>,
        event_id: &str,
        correlation_id: Option<&str>,
    ) -> Result<Option<String>, TemplateError> {
        let template = self.template()?;
        // As the webhook would receive it (`delivery_body`): a received event's body whole.
        let payload = match &event.payload {
            Payload::Fields(fields) => fields
                .iter()
                .filter(|(key, _)| !attributes.contains_key(*key))
                .map(|(key, value)| ((*key).into(), dynamic(value)))
                .collect::<rhai::Map>()
                .into(),
            Payload::Received(body) => dynamic(body),
        };
        let body: rhai::Map =
            [("name".into(), Dynamic::from(event.name().to_owned())), ("payload".into(), payload)].into();
        let attributes: rhai::Map = attributes.iter().map(|(k, v)| (k.into(), Dynamic::from(v.clone()))).collect();
        let enrichment: rhai::Map =
            event.enrichment.iter().flat_map(|e| e.iter()).map(|(name, value)| (name.into(), dynamic(value))).collect();
        let made = template.run(vec![
            ("body", body.into()),
            ("attributes", attributes.into()),
            ("eventId", Dynamic::from(event_id.to_owned())),
            ("correlationId", correlation_id.map_or(Dynamic::UNIT, |c| Dynamic::from(c.to_owned()))),
            ("enrichment", enrichment.into()),
        ])?;
        if made.is_unit() {
            return Ok(None);
        }
        // Written no further than an event may be: a value may hold one large string many times over.
        json_text(&made, MAX_EVENT_BYTES).map(Some).map_err(TemplateError)
    }
}

impl PartialEq for Transform {
    fn eq(&self, other: &Transform) -> bool {
        self.source == other.source
    }
}

impl Eq for Transform {}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Transform({:?})", self.source)
    }
}

impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Transform, D::Error> {
        let source = String::deserialize(deserializer)?;
        let compiled = Template::compile(&source, &TRANSFORM_INPUTS);
        Ok(Transform { source: source.into(), compiled })
    }
}

impl JsonSchema for Transform {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Transform".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "rhai-template",
            "minLength": 1,
            "maxLength": MAX_SOURCE_BYTES,
            "description": "A Rhai template that makes the body this webhook gets from the one it would receive. It reads `body` ({\"name\": ..., \"payload\": {...}}), `attributes` (the webhook's), `eventId` and `correlationId` (null when none); it returns the new body (a map, an array, a string...), or `()` when this webhook does not want this event (the delivery is recorded as filtered). The signature covers the new body. A run failing (or taking more than 1,000,000 steps) kills that delivery at once, with its error.",
            "examples": ["#{ type: body.name, customer: #{ fiscalCode: body.payload.fiscalCode }, service: attributes.serviceId }"]
        })
    }
}
