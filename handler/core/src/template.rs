//! Templates: small Rhai programs that build JSON from JSON (a webhook's `transform`), compiled once and run
//! in a sandbox. Why Rhai: docs/template-engines.md.
//!
//! A run is a pure function of its input: no clock, no I/O, no `import`, no `print`. It is bounded by counts,
//! not by time, so that the same input always fails the same way (a failed transform is never retried):
//! [`MAX_OPERATIONS`] steps (an endless loop stops within milliseconds), [`MAX_CALL_DEPTH`] nested calls (no
//! stack overflow), and sizes of strings, arrays and maps (no huge allocation). Variables are checked when the
//! template compiles: a misspelt name is a compile error, not a failed delivery.

use crate::events::Event;
use rhai::packages::{Package, StandardPackage};
use rhai::{Dynamic, Engine, Scope, AST};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Steps a run may take: a typical reshape takes a few dozen, an endless loop stops after about 3 ms.
pub const MAX_OPERATIONS: u64 = 1_000_000;
/// The longest string a run may hold: four times the largest event, so that any body fits.
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// The most items an array or a map may hold.
pub const MAX_ITEMS: usize = 65_536;
/// How deeply functions may call each other.
pub const MAX_CALL_DEPTH: usize = 32;
/// The longest template source accepted.
pub const MAX_SOURCE_BYTES: usize = 16 * 1024;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // `new_raw`: no module resolver, no `print` or `debug` reaching stdout.
        let mut engine = Engine::new_raw();
        engine.register_global_module(StandardPackage::new().as_shared_module());
        engine.set_max_operations(MAX_OPERATIONS);
        engine.set_max_string_size(MAX_STRING_BYTES);
        engine.set_max_array_size(MAX_ITEMS);
        engine.set_max_map_size(MAX_ITEMS);
        engine.set_max_call_levels(MAX_CALL_DEPTH);
        engine.set_max_expr_depths(64, 32);
        engine.set_strict_variables(true);
        engine
    })
}

/// A compiled template and the names of the variables it is given.
#[derive(Clone)]
pub struct Template {
    source: Arc<str>,
    ast: Arc<AST>,
}

/// Why a template does not compile or a run failed, with where (line and position) when the engine says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl Template {
    /// Compiles `source`, which may read the variables `inputs` and nothing else.
    pub fn compile(source: &str, inputs: &[&str]) -> Result<Template, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError("is empty".to_owned()));
        }
        if source.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError(format!("is {} bytes, over the limit of {MAX_SOURCE_BYTES}", source.len())));
        }
        let mut scope = Scope::new();
        // Declared, not constant: the optimiser would otherwise fold the placeholder values into the program.
        for name in inputs {
            scope.push_dynamic(*name, Dynamic::UNIT);
        }
        let ast =
            engine().compile_with_scope(&scope, source).map_err(|e| TemplateError(format!("does not compile: {e}")))?;
        Ok(Template { source: source.into(), ast: Arc::new(ast) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the template on `inputs` (each a variable): the JSON it makes, `None` when it makes nothing (`()`),
    /// or why it failed.
    pub fn render(&self, inputs: &[(&str, &Value)]) -> Result<Option<Value>, TemplateError> {
        let inputs = inputs.iter().map(|(name, value)| (*name, dynamic(value))).collect();
        let made = self.run(inputs)?;
        if made.is_unit() {
            return Ok(None);
        }
        rhai::serde::from_dynamic::<Value>(&made)
            .map(Some)
            .map_err(|e| TemplateError(format!("made something that is not JSON: {e}")))
    }

    fn run(&self, inputs: Vec<(&str, Dynamic)>) -> Result<Dynamic, TemplateError> {
        let mut scope = Scope::new();
        for (name, value) in inputs {
            scope.push_constant_dynamic(name, value);
        }
        engine()
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast)
            .map_err(|e| TemplateError(format!("failed: {e}")))
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

impl Eq for Template {}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Template({:?})", self.source)
    }
}

/// A webhook's transform: a template from the body it would receive to the body it gets.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transform(pub Template);

/// What a transform reads.
pub const TRANSFORM_INPUTS: [&str; 4] = ["body", "attributes", "eventId", "correlationId"];

impl Transform {
    pub fn compile(source: &str) -> Result<Transform, TemplateError> {
        Template::compile(source, &TRANSFORM_INPUTS).map(Transform)
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
        self.0.render(&[
            ("body", body),
            ("attributes", attributes),
            ("eventId", &event_id),
            ("correlationId", &correlation_id),
        ])
    }
}

impl Transform {
    /// [`Transform::apply`] to the delivery body of `event` for a webhook with `attributes` (the event without
    /// the attributes' keys), straight to the JSON text of the new body: what routing runs, without writing
    /// and reading the body once more.
    pub fn apply_to_event(
        &self,
        event: &Event,
        attributes: &BTreeMap<String, String>,
        event_id: &str,
        correlation_id: Option<&str>,
    ) -> Result<Option<String>, TemplateError> {
        let payload: rhai::Map = event
            .payload
            .iter()
            .filter(|(key, _)| !attributes.contains_key(*key))
            .map(|(key, value)| (key.into(), dynamic(value)))
            .collect();
        let body: rhai::Map = [("name".into(), Dynamic::from(event.name())), ("payload".into(), payload.into())].into();
        let attributes: rhai::Map = attributes.iter().map(|(k, v)| (k.into(), Dynamic::from(v.clone()))).collect();
        let made = self.0.run(vec![
            ("body", body.into()),
            ("attributes", attributes.into()),
            ("eventId", Dynamic::from(event_id.to_owned())),
            ("correlationId", correlation_id.map_or(Dynamic::UNIT, |c| Dynamic::from(c.to_owned()))),
        ])?;
        if made.is_unit() {
            return Ok(None);
        }
        serde_json::to_string(&made)
            .map(Some)
            .map_err(|e| TemplateError(format!("made something that is not JSON: {e}")))
    }
}

/// A JSON value as the engine holds it (strings without a round trip through serde).
fn dynamic(value: &Value) -> Dynamic {
    match value {
        Value::String(text) => Dynamic::from(text.clone()),
        other => rhai::serde::to_dynamic(other).unwrap_or(Dynamic::UNIT),
    }
}

impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.source())
    }
}

impl<'de> Deserialize<'de> for Transform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Transform, D::Error> {
        let source = String::deserialize(deserializer)?;
        Transform::compile(&source).map_err(serde::de::Error::custom)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(source: &str) -> Result<Option<Value>, TemplateError> {
        let body = json!({"name": "service:subscribed", "payload": {"fiscalCode": "AAABBB00A00A000B"}});
        Transform::compile(source)?.apply(&body, &json!({"serviceId": "S1"}), "evt_1", None)
    }

    #[test]
    fn a_transform_reshapes_the_body_or_makes_nothing() {
        assert_eq!(
            run("#{ type: body.name, fc: body.payload.fiscalCode, service: attributes.serviceId, id: eventId }")
                .unwrap(),
            Some(json!({"fc": "AAABBB00A00A000B", "id": "evt_1", "service": "S1", "type": "service:subscribed"}))
        );
        assert_eq!(run("if body.payload.fiscalCode.starts_with(\"ZZZ\") { body } else { () }").unwrap(), None);
        assert_eq!(run("correlationId").unwrap(), None, "null is nothing");
        assert_eq!(run("[1, 2.5, true, \"x\"]").unwrap(), Some(json!([1, 2.5, true, "x"])));
    }

    #[test]
    fn a_template_that_does_not_compile_says_where() {
        let error = |source: &str| Transform::compile(source).unwrap_err().to_string();
        assert_eq!(error("  "), "is empty");
        assert!(error("#{ a: body.name ").starts_with("does not compile: "), "{}", error("#{ a: body.name "));
        assert!(error("#{ a: body.name ").contains("line 1"), "{}", error("#{ a: body.name "));
        let misspelt = error("bdy.name");
        assert!(misspelt.contains("bdy") && misspelt.contains("line 1, position 1"), "{misspelt}");
        assert!(error(&"1+".repeat(10_000)).contains("over the limit"));
    }

    /// Each stops with an error, deterministically: no hang, no crash, no huge allocation.
    #[test]
    fn hostile_templates_fail_with_an_error() {
        for (source, expected) in [
            ("loop { }", "Too many operations"),
            ("let n = 0; while true { n += 1; }", "Too many operations"),
            ("fn f(x) { f(x + 1) } f(0)", "Stack overflow"),
            ("let s = \"a\"; loop { s += s; }", "Length of string"),
            ("let s = \"x\"; s.pad(100_000_000, \"y\"); s", "Length of string"),
            ("let a = [1]; loop { a += a; }", "Size of array"),
            // A map grown key by key is bounded by the steps it takes.
            ("let m = #{}; for i in 0..1_000_000 { m[`k${i}`] = i; } m", "Too many operations"),
        ] {
            let error = match run(source) {
                Err(error) => error.to_string(),
                Ok(made) => panic!("{source}: made {} bytes", made.map_or(0, |v| v.to_string().len())),
            };
            assert!(error.starts_with("failed: ") && error.contains(expected), "{source}: {error}");
        }
    }

    #[test]
    fn a_transform_is_stored_as_its_source_and_read_back_compiled() {
        let transform = Transform::compile("body.payload").unwrap();
        assert_eq!(serde_json::to_value(&transform).unwrap(), json!("body.payload"));
        let read: Transform = serde_json::from_value(json!("body.payload")).unwrap();
        assert_eq!(read, transform);
        assert!(serde_json::from_value::<Transform>(json!("body.")).is_err());
    }
}
