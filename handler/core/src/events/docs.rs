//! What the catalog and the mapping table document of themselves: the JSON Schemas of the payloads and of an
//! incoming event, the catalog as JSON (`GET /api/v1/events/catalog`), and the Markdown tables of `docs/events.md`.
//! `handler schemas` writes them into `schemas/`; a test fails when the committed copies are stale.

use super::catalog;
use super::mapping::Mapping;
pub use super::spec::file_stem;
use super::spec::EventSpec;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The catalog and the mapping table, as served at `GET /api/v1/events/catalog`: each event with its payload's
/// JSON Schema and a sample event that the dispatcher accepts.
pub fn catalog() -> Value {
    let catalog = catalog::current();
    let events: Vec<Value> = catalog
        .events
        .iter()
        .map(|e| {
            let mut entry = object(json!(e));
            entry.insert("schema".to_owned(), payload_schema(e, false));
            entry.insert("example".to_owned(), example(e));
            Value::Object(entry)
        })
        .collect();
    json!({"events": events, "mappings": catalog.mappings})
}

/// A valid event of this kind, every field given an example value.
pub fn example(event: &EventSpec) -> Value {
    let payload: Map<String, Value> =
        event.fields.iter().filter(|f| f.required).map(|f| (f.name.clone(), f.example())).collect();
    json!({"name": event.name, "payload": payload})
}

/// The JSON Schema of an event's payload. Undocumented keys are allowed (and dropped), so producers that send
/// more keep working.
pub fn payload_schema(event: &EventSpec, standalone: bool) -> Value {
    let properties: Map<String, Value> = event
        .fields
        .iter()
        .map(|f| {
            let mut schema = f.ty.json_schema();
            schema["description"] = Value::from(f.description.as_str());
            (f.name.clone(), schema)
        })
        .collect();
    let mut schema = Map::new();
    if standalone {
        schema.insert("$schema".to_owned(), Value::from(DRAFT));
    }
    schema.extend(object(json!({
        "title": format!("{} payload", event.name),
        "description": event.description,
        "type": "object",
        "properties": properties,
        "required": event.fields.iter().filter(|f| f.required).map(|f| &f.name).collect::<Vec<_>>(),
    })));
    Value::Object(schema)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The JSON Schema of a message the dispatcher accepts: one of the catalog's events. With `standalone` false,
/// payload schemas are inlined rather than in `$defs`, for embedding in the OpenAPI document.
pub fn incoming_event_schema(standalone: bool) -> Value {
    let events = &catalog::current().events;
    let variants: Vec<Value> = events
        .iter()
        .map(|e| {
            let optional = e.fields.iter().all(|f| !f.required);
            let required: &[&str] = if optional { &["name"] } else { &["name", "payload"] };
            let payload = match standalone {
                true => json!({"$ref": format!("#/$defs/{}", file_stem(&e.name))}),
                false => payload_schema(e, false),
            };
            // A missing or null payload is `{}`, as in the original system: enough for an event without required
            // fields.
            let payload = match optional {
                true => json!({"anyOf": [payload, {"type": "null"}]}),
                false => payload,
            };
            json!({
                "type": "object",
                "properties": {"name": {"const": e.name}, "payload": payload},
                "required": required,
            })
        })
        .collect();
    let mut schema = json!({
        "title": "Incoming event",
        "description": "A message sent to the dispatcher: an event name and its payload (a missing or null payload is `{}`).",
        "oneOf": variants,
    });
    if standalone {
        let defs: Map<String, Value> = events.iter().map(|e| (file_stem(&e.name), payload_schema(e, false))).collect();
        schema["$defs"] = Value::Object(defs);
        let mut with_draft = Map::from_iter([("$schema".to_owned(), Value::from(DRAFT))]);
        with_draft.extend(object(schema));
        return Value::Object(with_draft);
    }
    schema
}

/// The three Markdown tables: public events, non-public events, and the mapping.
pub fn event_tables() -> String {
    let mut md = String::new();
    md.push_str("### Public events\n\nDelivered to the webhooks subscribed to them.\n\n");
    md.push_str("| Event | Payload | Description | Required attributes |\n|---|---|---|---|\n");
    let catalog = catalog::current();
    for e in catalog.events.iter().filter(|e| e.is_public()) {
        let required = e.required_attributes().iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(md, "| `{}` | {} | {} | {} |", e.name, fields_cell(e), e.description, required);
    }
    md.push_str(
        "\n### Non-public events\n\nAccepted from internal services, never delivered as they are: the mapping ",
    );
    md.push_str("below turns them into public events.\n\n| Event | Payload | Description |\n|---|---|---|\n");
    for e in catalog.events.iter().filter(|e| !e.is_public()) {
        let _ = writeln!(md, "| `{}` | {} | {} |", e.name, fields_cell(e), e.description);
    }
    md.push_str("\n### Mapping\n\nEach emitted event is then routed like any public event.\n\n");
    md.push_str("| From | When | Emits | Once for each | Payload |\n|---|---|---|---|---|\n");
    for m in &catalog.mappings {
        let _ = writeln!(
            md,
            "| `{}` | {} | `{}` | {} | {} |",
            m.from,
            when_cell(m),
            m.to,
            for_each_cell(m),
            payload_cell(m)
        );
    }
    md
}

fn fields_cell(event: &EventSpec) -> String {
    if event.fields.is_empty() {
        return "-".to_owned();
    }
    let fields: Vec<String> = event
        .fields
        .iter()
        .map(|f| {
            let optional = if f.required { "" } else { ", optional" };
            format!("`{}` ({}{optional}): {}", f.name, f.ty.label(), f.description)
        })
        .collect();
    fields.join("<br>")
}

fn when_cell(mapping: &Mapping) -> String {
    let Some(when) = &mapping.when else { return "always".to_owned() };
    // A pattern of payload fields each listing plain strings reads as words; any other is shown as written.
    let pattern = when.pattern();
    let words: Option<Vec<String>> = match (pattern.as_object(), pattern.get("payload").and_then(Value::as_object)) {
        (Some(top), Some(fields)) if top.len() == 1 => fields
            .iter()
            .map(|(field, values)| {
                let values: Option<Vec<String>> =
                    values.as_array()?.iter().map(|v| v.as_str().map(|v| format!("`{v}`"))).collect();
                Some(format!("`{field}` is {}", values?.join(" or ")))
            })
            .collect(),
        _ => None,
    };
    words.map_or_else(|| format!("matches `{pattern}`"), |words| words.join(" and "))
}

fn for_each_cell(mapping: &Mapping) -> String {
    match &mapping.for_each {
        Some(attribute) => format!("distinct `{attribute}` attribute of the enabled webhooks"),
        None => "once".to_owned(),
    }
}

fn payload_cell(mapping: &Mapping) -> String {
    // An expression may hold `|`, which would end the cell.
    let fields: Vec<String> = mapping
        .payload
        .iter()
        .map(|(field, source)| format!("`{field}` = `{}`", source.path().replace('|', "\\|")))
        .collect();
    let fetched: Vec<String> = mapping.hydrate.iter().map(|name| format!("`{name}`")).collect();
    match fetched.is_empty() {
        true => fields.join(", "),
        false => format!("after fetching {}: {}", fetched.join(", "), fields.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incoming_event_schema_names_every_event_and_its_payload_fields() {
        let schema = incoming_event_schema(true);
        let names: Vec<&str> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["properties"]["name"]["const"].as_str().unwrap())
            .collect();
        assert_eq!(names, crate::events::catalog::names(false));
        assert_eq!(schema["$defs"]["ping"]["required"], json!(["name"]));
        assert_eq!(
            schema["$defs"]["service.subscribed"]["properties"]["fiscalCode"]["pattern"],
            crate::events::fields::FISCAL_CODE_PATTERN
        );
        let inline = incoming_event_schema(false);
        assert!(inline.get("$defs").is_none() && inline["oneOf"][0]["properties"]["payload"]["type"] == "object");
    }

    #[test]
    fn every_sample_event_of_the_catalog_is_accepted_and_carries_its_schema() {
        let catalog = catalog();
        let events = catalog["events"].as_array().unwrap();
        assert_eq!(events.len(), catalog::current().events.len());
        for entry in events {
            let decoded = crate::events::decode_value(entry["example"].clone());
            assert!(decoded.is_ok(), "{}: {decoded:?}", entry["name"]);
            assert_eq!(entry["schema"]["title"], format!("{} payload", entry["name"].as_str().unwrap()));
        }
    }

    #[test]
    fn the_tables_have_a_row_per_event_and_per_mapping() {
        let tables = event_tables();
        for event in &catalog::current().events {
            assert!(tables.contains(&format!("| `{}` |", event.name)), "{}", event.name);
        }
        assert_eq!(tables.matches("| `profile:completed` | `servicePreferencesMode` is `AUTO` |").count(), 1);
    }
}
