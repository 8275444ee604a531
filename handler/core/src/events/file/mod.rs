//! Reading a catalog file: JSON text in, a checked [`Catalog`] or a report of every problem out, each with its
//! path inside the file (`events[2].payload.properties.fiscalCode.format`). Everything a rule could get wrong
//! is found here, at load, so that running the table cannot fail at delivery.

mod enrichers;
mod rules;
mod schema;

pub use enrichers::{Environment, MAX_TIMEOUT};
pub use schema::schema;

use super::contents::Catalog;
use super::fields::{FieldType, FORMATS};
use super::mapping::Mapping;
use super::spec::{file_stem, Audience, EventSpec, Field};
use crate::model::{self, join, quote, wrong_type, CallbackType, Problem, Report};
use rules::decode_rule;
use serde_json::{Map, Value};

pub(crate) const TOP: [&str; 5] = ["$schema", "description", "events", "mappings", "enrichers"];
pub(crate) const EVENT: [&str; 5] = ["name", "audience", "requiredAttributes", "description", "payload"];
pub(crate) const PAYLOAD: [&str; 5] = ["type", "properties", "required", "title", "description"];
pub(crate) const FIELD: [&str; 6] = ["type", "minLength", "format", "enum", "examples", "description"];
pub(crate) const RULE: [&str; 6] = ["from", "when", "to", "forEach", "payload", "hydrate"];

/// Reads and checks a catalog file that reads no environment variable (`${NAME}`: see [`load_in`]).
pub fn load(text: &str) -> Result<Catalog, Report> {
    load_in(text, &|_| None)
}

/// Reads and checks a catalog file, its enrichers' `${NAME}` places read from `env`. Every event entry is kept
/// while checking, even one with problems, so that each problem is reported once, at its place, and paths
/// match the file's indices.
pub fn load_in(text: &str, env: Environment<'_>) -> Result<Catalog, Report> {
    let value: Value = serde_json::from_str(text).map_err(|e| Report::single("file", format!("is not JSON: {e}")))?;
    let Value::Object(file) = value else {
        return Err(Report::single("file", wrong_type(&value, r#"an object {"events": [...], "mappings": [...]}"#)));
    };
    let mut problems = Vec::new();
    unknown_keys(&file, "", &TOP, "a catalog file", &mut problems);
    optional_string(&file, "", "description", &mut problems);
    let events = match file.get("events") {
        Some(Value::Array(entries)) if !entries.is_empty() => entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| decode_event(entry, &format!("events[{i}]"), &mut problems))
            .collect(),
        Some(other) => {
            problems.push(Problem::new("events", wrong_type(other, "a non-empty array of events")));
            Vec::new()
        }
        None => {
            problems.push(Problem::new("events", "is missing, expected a non-empty array of events"));
            Vec::new()
        }
    };
    let enrichers = enrichers::decode_enrichers(file.get("enrichers"), env, &mut problems);
    let mut catalog = Catalog { events, mappings: Vec::new(), enrichers };
    for (i, event) in catalog.events.iter().enumerate() {
        if catalog.events[..i].iter().any(|e| e.name == event.name) {
            problems.push(Problem::new(format!("events[{i}].name"), format!("{} is declared twice", event.name)));
        } else if let Some(other) = catalog.events[..i].iter().find(|e| file_stem(&e.name) == file_stem(&event.name)) {
            problems.push(Problem::new(
                format!("events[{i}].name"),
                format!(
                    "{} and {} would share the schema file {}.json",
                    other.name,
                    event.name,
                    file_stem(&event.name)
                ),
            ));
        }
    }
    // As written, so that an enricher with a problem of its own is not also unknown to its rules.
    let declared_enrichers: Vec<&str> = match file.get("enrichers") {
        Some(Value::Object(entries)) => entries.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    catalog.mappings = match file.get("mappings") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(rules)) => rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                decode_rule(&catalog, &declared_enrichers, rule, &format!("mappings[{i}]"), &mut problems)
                    .map(|rule| Mapping { position: i, ..rule })
            })
            .collect(),
        Some(other) => {
            problems.push(Problem::new("mappings", wrong_type(other, "an array of mapping rules")));
            Vec::new()
        }
    };
    // Against the rules as written, so that a rule with a problem of its own does not also orphan its event.
    let sources: Vec<&str> = match file.get("mappings") {
        Some(Value::Array(rules)) => rules.iter().filter_map(|r| r.get("from")?.as_str()).collect(),
        _ => Vec::new(),
    };
    let declared_non_public = |i: usize| file["events"][i].get("audience").is_some_and(|a| a == "non-public");
    for (i, event) in catalog.events.iter().enumerate().filter(|(i, _)| declared_non_public(*i)) {
        if !sources.contains(&event.name.as_str()) {
            problems.push(Problem::new(
                format!("events[{i}]"),
                format!("{} is non-public and no mapping rule starts from it: it could never be delivered", event.name),
            ));
        }
    }
    Report::check(problems).map(|()| catalog)
}

fn decode_event(entry: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<EventSpec> {
    let Value::Object(entry) = entry else {
        problems.push(Problem::new(path, wrong_type(entry, "an event {\"name\": ..., \"audience\": ...}")));
        return Some(EventSpec {
            name: String::new(),
            audience: Audience::NonPublic,
            description: String::new(),
            fields: Vec::new(),
        });
    };
    unknown_keys(entry, path, &EVENT, "an event", problems);
    let name = required_string(entry, path, "name", problems).unwrap_or_default();
    check_event_name(&name, &format!("{path}.name"), problems);
    let fields = match entry.get("payload") {
        None | Some(Value::Null) => Vec::new(),
        Some(payload) => decode_payload(payload, &format!("{path}.payload"), problems),
    };
    let required_attributes = entry.get("requiredAttributes");
    let audience = match entry.get("audience").and_then(Value::as_str) {
        Some("public") => {
            let attributes = string_list(required_attributes, &format!("{path}.requiredAttributes"), problems);
            for (i, attribute) in attributes.iter().enumerate() {
                // Routing compares an attribute with the payload value of the same name.
                if !fields.iter().any(|f| f.name == *attribute && f.required && is_text(f.ty)) {
                    problems.push(Problem::new(
                        format!("{path}.requiredAttributes[{i}]"),
                        format!("{attribute} is not a required string field of the payload"),
                    ));
                }
            }
            Audience::Public { required_attributes: attributes }
        }
        Some("non-public") => {
            if required_attributes.is_some() {
                problems.push(Problem::new(
                    format!("{path}.requiredAttributes"),
                    "is for public events only: a non-public event is never routed",
                ));
            }
            Audience::NonPublic
        }
        _ => {
            let found = entry.get("audience").map_or("is missing".to_owned(), |v| format!("{} is wrong", quote(v)));
            problems.push(Problem::new(
                format!("{path}.audience"),
                format!("{found}, expected \"public\" or \"non-public\""),
            ));
            Audience::NonPublic
        }
    };
    let description = optional_string(entry, path, "description", problems).unwrap_or_default();
    Some(EventSpec { name, audience, description, fields })
}

fn check_event_name(name: &str, path: &str, problems: &mut Vec<Problem>) {
    let problem = if name.is_empty() {
        "is empty"
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)) {
        // Names go into subscription lists, patterns, file names and delivery bodies as they are.
        "has a character other than ASCII letters, digits and : . _ -"
    } else if CallbackType::parse(name).is_some() {
        // Delivery records of callbacks are told apart from events by this name.
        "is the name of a callback type"
    } else {
        return;
    };
    problems.push(Problem::new(path, format!("{}: {problem}", quote(&Value::from(name)))));
}

fn decode_payload(payload: &Value, path: &str, problems: &mut Vec<Problem>) -> Vec<Field> {
    let Value::Object(schema) = payload else {
        problems.push(Problem::new(path, wrong_type(payload, "a JSON Schema of an object")));
        return Vec::new();
    };
    unknown_keys(schema, path, &PAYLOAD, "a payload schema", problems);
    if schema.get("type").is_some_and(|t| t != "object") {
        problems.push(Problem::new(format!("{path}.type"), "must be \"object\": a payload is an object"));
    }
    let required = string_list(schema.get("required"), &format!("{path}.required"), problems);
    let properties = match schema.get("properties") {
        None => &Map::new(),
        Some(Value::Object(properties)) => properties,
        Some(other) => {
            problems.push(Problem::new(format!("{path}.properties"), wrong_type(other, "an object of field schemas")));
            return Vec::new();
        }
    };
    for (i, name) in required.iter().enumerate() {
        if !properties.contains_key(name) {
            problems.push(Problem::new(format!("{path}.required[{i}]"), format!("{name} is not in properties")));
        }
    }
    properties
        .iter()
        .filter_map(|(name, schema)| {
            let field_path = format!("{path}.properties.{name}");
            if name.is_empty() || name.contains(['"', '\\']) || name.chars().any(char::is_control) {
                problems.push(Problem::new(
                    &field_path,
                    "a field name is not empty and has no quote, backslash or control character",
                ));
            }
            let (ty, description, example) = decode_field(schema, &field_path, problems)?;
            Some(Field { name: name.clone(), ty, required: required.contains(name), description, example })
        })
        .collect()
}

fn decode_field(schema: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<(FieldType, String, Option<Value>)> {
    let Value::Object(schema) = schema else {
        problems.push(Problem::new(path, wrong_type(schema, "a field schema {\"type\": ...}")));
        return None;
    };
    let before = problems.len();
    unknown_keys(schema, path, &FIELD, "a catalog field", problems);
    let string_only = |key: &str| format!("{path}.{key}");
    let ty = match schema.get("type").and_then(Value::as_str) {
        Some("string") => {
            let format = schema.get("format");
            let one_of = schema.get("enum");
            let min_length = schema.get("minLength");
            match (format, one_of, min_length) {
                (Some(format), None, None) => match format.as_str().filter(|f| FORMATS.contains(f)) {
                    Some(_) => FieldType::FiscalCode,
                    None => {
                        problems.push(Problem::new(
                            string_only("format"),
                            format!("{} is not a named format; known: {}", quote(format), FORMATS.join(", ")),
                        ));
                        FieldType::String
                    }
                },
                (None, Some(values), None) => {
                    let values = string_list(Some(values), &string_only("enum"), problems);
                    if values.is_empty() {
                        problems.push(Problem::new(string_only("enum"), "is empty: no value would be valid"));
                    }
                    FieldType::OneOf(Box::leak(values.into_iter().map(|v| &*v.leak()).collect()))
                }
                (None, None, None) => FieldType::String,
                (None, None, Some(n)) if n == 0 => FieldType::String,
                (None, None, Some(n)) if n == 1 => FieldType::NonEmptyString,
                (None, None, Some(n)) => {
                    problems
                        .push(Problem::new(string_only("minLength"), format!("{} is not supported: 0 or 1", quote(n))));
                    FieldType::String
                }
                _ => {
                    problems.push(Problem::new(path, "takes one of format, enum and minLength"));
                    FieldType::String
                }
            }
        }
        Some(other @ ("integer" | "number" | "boolean" | "object" | "array")) => {
            for key in ["format", "enum", "minLength"].into_iter().filter(|k| schema.contains_key(*k)) {
                problems.push(Problem::new(string_only(key), format!("is for strings, not {other}")));
            }
            match other {
                "integer" => FieldType::Integer,
                "number" => FieldType::Number,
                "boolean" => FieldType::Boolean,
                "object" => FieldType::Object,
                _ => FieldType::Array,
            }
        }
        _ => {
            let found =
                schema.get("type").map_or("is missing".to_owned(), |v| format!("{} is not supported", quote(v)));
            problems.push(Problem::new(
                format!("{path}.type"),
                format!("{found}; a field is a string, integer, number, boolean, object or array"),
            ));
            FieldType::String
        }
    };
    let example = match schema.get("examples") {
        None => None,
        Some(Value::Array(examples)) if !examples.is_empty() => {
            if let Err(invalid) = ty.check(&examples[0]) {
                problems.push(Problem::new(format!("{path}.examples[0]"), invalid.to_string()));
            }
            Some(examples[0].clone())
        }
        Some(other) => {
            problems.push(Problem::new(format!("{path}.examples"), wrong_type(other, "a non-empty array")));
            None
        }
    };
    let description = optional_string(schema, path, "description", problems).unwrap_or_default();
    (problems.len() == before).then_some((ty, description, example))
}

pub(crate) fn is_text(ty: FieldType) -> bool {
    matches!(ty, FieldType::String | FieldType::NonEmptyString | FieldType::FiscalCode | FieldType::OneOf(_))
}

pub(crate) fn unknown_keys(
    object: &Map<String, Value>,
    path: &str,
    known: &[&str],
    what: &str,
    problems: &mut Vec<Problem>,
) {
    problems.extend(model::unknown_keys(object, path, known, &format!("key of {what}"), "keys"));
}

pub(crate) fn required_string(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match object.get(key) {
        None => {
            problems.push(Problem::new(join(path, key), "is missing, expected a string"));
            None
        }
        Some(_) => optional_string(object, path, key, problems),
    }
}

pub(crate) fn optional_string(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    model::optional_string(object.get(key), &join(path, key), problems)
}

pub(crate) fn string_list(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(text) if !items[..i].contains(item) => Some(text.clone()),
                Value::String(_) => {
                    problems.push(Problem::new(format!("{path}[{i}]"), format!("{} is listed twice", quote(item))));
                    None
                }
                other => {
                    problems.push(Problem::new(format!("{path}[{i}]"), wrong_type(other, "a string")));
                    None
                }
            })
            .collect(),
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "an array of strings")));
            Vec::new()
        }
    }
}
