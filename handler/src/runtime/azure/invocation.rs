//! The custom-handler protocol for non-HTTP triggers: the host POSTs `{"Data": {...}, "Metadata": {...}}` to
//! `/{FunctionName}` and expects a 2xx JSON answer `{"Outputs": {...}, "Logs": [...], "ReturnValue": ...}`
//! (docs/azure-functions.md §2 and §3).
//!
//! How the host encodes values is documented one way and coded another (docs/azure-functions.md §2): byte
//! arrays arrive as base64, objects as objects, and strings, numbers and booleans either plain or as JSON text
//! inside a string (`"\"abc\""`). Both readings are accepted everywhere here.

use base64::Engine as _;
use dispatcher_core::model::kind_of;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvocationError {
    #[error("the invocation is not a JSON object with Data and Metadata: {0}")]
    Shape(String),
    #[error("Data.{binding} is missing")]
    MissingBinding { binding: String },
    #[error("Data.{binding} is neither base64 nor JSON text nor a JSON object: {reason}")]
    Body { binding: String, reason: String },
}

/// One invocation of a function, as the host posts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub data: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

impl Invocation {
    pub fn parse(bytes: &[u8]) -> Result<Invocation, InvocationError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| InvocationError::Shape(e.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(InvocationError::Shape(format!("got {}", kind_of(&value))));
        };
        let mut part = |key: &str| match object.remove(key) {
            Some(Value::Object(map)) => Ok(map),
            None | Some(Value::Null) => Ok(Map::new()),
            Some(other) => Err(InvocationError::Shape(format!("{key} is {}, not an object", kind_of(&other)))),
        };
        Ok(Invocation { data: part("Data")?, metadata: part("Metadata")? })
    }

    /// The bytes of a trigger's message body: base64 (`dataType: binary`), a JSON string holding the body's
    /// JSON text (the default string binding), or the JSON object itself.
    pub fn message_body(&self, binding: &str) -> Result<Vec<u8>, InvocationError> {
        let value =
            self.data.get(binding).ok_or_else(|| InvocationError::MissingBinding { binding: binding.into() })?;
        let body_error = |reason: String| InvocationError::Body { binding: binding.into(), reason };
        match value {
            Value::String(text) => body_from_text(text).map_err(body_error),
            Value::Object(_) | Value::Array(_) => serde_json::to_vec(value).map_err(|e| body_error(e.to_string())),
            other => Err(body_error(format!("got {}", kind_of(other)))),
        }
    }

    /// A metadata value, with JSON text inside a string read as JSON (`"\"abc\""` → `"abc"`, `"1"` → `1`).
    pub fn metadata(&self, key: &str) -> Option<Value> {
        self.metadata.get(key).map(unwrap_json_text)
    }

    /// A metadata value as text (`MessageId`, `CorrelationId`, ...); numbers are written out.
    pub fn metadata_text(&self, key: &str) -> Option<String> {
        match self.metadata(key)? {
            Value::String(text) => Some(text),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    /// A metadata number (`DeliveryCount`, `SequenceNumber`).
    pub fn metadata_u64(&self, key: &str) -> Option<u64> {
        match self.metadata(key)? {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// An application property of the message (`ApplicationProperties`, or its older name `UserProperties`).
    pub fn application_property(&self, key: &str) -> Option<String> {
        ["ApplicationProperties", "UserProperties"].iter().find_map(|bag| match self.metadata(bag)? {
            Value::Object(properties) => match unwrap_json_text(properties.get(key)?) {
                Value::String(text) => Some(text),
                Value::Null => None,
                other => Some(other.to_string()),
            },
            _ => None,
        })
    }
}

/// A string that is JSON text (an object, an array, a string) is that JSON; anything else is base64.
fn body_from_text(text: &str) -> Result<Vec<u8>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(_) | Value::Array(_)) => Ok(text.as_bytes().to_vec()),
        Ok(Value::String(inner)) => body_from_text(&inner),
        _ => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("{text:?} is not JSON text, and not base64 ({e})")),
    }
}

fn unwrap_json_text(value: &Value) -> Value {
    match value {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(inner) => inner,
            Err(_) => value.clone(),
        },
        other => other.clone(),
    }
}

/// What the handler answers to an invocation (always with a 2xx status).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationResponse {
    outputs: Map<String, Value>,
    logs: Vec<String>,
}

impl InvocationResponse {
    /// Messages for an output binding: one message per element, each pre-serialized JSON text, always as an
    /// array (a lone string that happens to be valid base64 would be sent as its decoded bytes;
    /// docs/azure-functions.md §3).
    pub fn messages(mut self, binding: &str, messages: Vec<String>) -> Self {
        self.outputs.insert(binding.to_owned(), Value::Array(messages.into_iter().map(Value::String).collect()));
        self
    }

    /// A line for the invocation log (Information level).
    pub fn log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({"Outputs": self.outputs, "Logs": self.logs, "ReturnValue": null})
    }
}
