//! The JSON Schema of a catalog file, for editors (`schemas/catalog-file.json`). The loader's checks go further
//! (names of events and fields that exist, paths that resolve); a test keeps the keys of both the same.

use crate::events::fields::FORMATS;
use serde_json::{json, Value};

/// The JSON Schema of a catalog file (`schemas/catalog-file.json`), for editors.
pub fn schema() -> Value {
    let name = json!({"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9:._-]+$"});
    let field = json!({
        "type": "object",
        "properties": {
            "type": {"enum": ["string", "integer", "number", "boolean", "object", "array"]},
            "minLength": {"enum": [0, 1]},
            "format": {"enum": FORMATS},
            "enum": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": true},
            "examples": {"type": "array", "minItems": 1},
            "description": {"type": "string"}
        },
        "required": ["type"],
        "additionalProperties": false
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Dispatcher catalog file",
        "description": "The events a dispatcher accepts and the rules that map its non-public events to public ones. `handler catalog check FILE` checks one.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string"},
            "description": {"type": "string"},
            "events": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/event"}},
            "mappings": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
            "enrichers": {
                "type": "object",
                "description": "What rules fetch before they run (`hydrate`), by name.",
                "propertyNames": {"pattern": "^[A-Za-z0-9_]+$"},
                "additionalProperties": {"$ref": "#/$defs/enricher"}
            }
        },
        "required": ["events"],
        "additionalProperties": false,
        "$defs": {
            "event": {
                "type": "object",
                "properties": {
                    "name": name,
                    "audience": {"enum": ["public", "non-public"]},
                    "requiredAttributes": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                    "description": {"type": "string"},
                    "payload": {
                        "type": "object",
                        "properties": {
                            "type": {"const": "object"},
                            "title": {"type": "string"},
                            "description": {"type": "string"},
                            "properties": {"type": "object", "additionalProperties": field},
                            "required": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
                        },
                        "additionalProperties": false
                    }
                },
                "required": ["name", "audience"],
                "additionalProperties": false
            },
            "rule": {
                "type": "object",
                "properties": {
                    "from": {"type": "string", "description": "A non-public event of the catalog."},
                    "when": {"type": "object", "description": "An event pattern (the language of webhook filters) on the incoming event."},
                    "to": {"type": "string", "description": "A public event of the catalog."},
                    "forEach": {"type": "string", "minLength": 1, "description": "Emit once for each distinct value of this webhook attribute."},
                    "payload": {
                        "type": "object",
                        "description": "Each field of the emitted event and where it comes from: a path (event.name, event.payload.<field>, attributes.<forEach>, enrichment.<name>[.<key>...]) or an expression (a template reading event, attributes and enrichment).",
                        "additionalProperties": {"type": "string"}
                    },
                    "hydrate": {
                        "type": "array",
                        "items": {"type": "string"},
                        "uniqueItems": true,
                        "description": "Enrichers whose answers the rule reads as enrichment.<name>; fetched once per event, before it runs."
                    }
                },
                "required": ["from", "to"],
                "additionalProperties": false
            },
            "enricher": {
                "type": "object",
                "properties": {
                    "method": {"enum": ["GET", "POST"]},
                    "url": {"type": "string", "description": "http(s) URL; {event.name} and {event.payload.<field>} are filled in percent-encoded; ${NAME} is an environment variable, read at load."},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Header values; ${NAME} is an environment variable, read at load."},
                    "body": {"type": "string", "format": "rhai-template", "description": "A template from `event` to the JSON body (POST)."},
                    "auth": {"type": "object", "description": "Credentials in the shapes of a webhook's auth (basic, bearer, oauth2, mtls); ${NAME} in a value is an environment variable."},
                    "failWhen": {"type": "object", "description": "An event pattern on the answer's JSON body: a 2xx matching it is a failure (GraphQL's errors)."},
                    "cache": {"type": "string", "description": "How long an answer is used again for the same request, such as \"5m\"."},
                    "timeout": {"type": "string", "description": "How long the request may take (at most 30s; default 5s)."}
                },
                "required": ["url"],
                "additionalProperties": false
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::{EVENT, FIELD, PAYLOAD, RULE, TOP};
    use super::*;

    #[test]
    fn the_schema_for_editors_takes_the_keys_the_loader_takes() {
        let schema = schema();
        let keys = |pointer: &str| -> Vec<String> {
            schema.pointer(pointer).and_then(Value::as_object).unwrap().keys().cloned().collect()
        };
        assert_eq!(keys("/properties"), TOP);
        assert_eq!(keys("/$defs/event/properties"), EVENT);
        assert_eq!(keys("/$defs/event/properties/payload/properties").len(), PAYLOAD.len());
        assert_eq!(
            keys("/$defs/event/properties/payload/properties/properties/additionalProperties/properties"),
            FIELD
        );
        assert_eq!(keys("/$defs/rule/properties"), RULE);
        assert_eq!(keys("/$defs/enricher/properties"), super::super::enrichers::ENRICHER);
    }
}
