//! What `handler schemas` generates from the catalog and the mapping table: the JSON Schemas and the catalog in
//! `schemas/`, and the event tables of the README. A test fails when the committed copies are stale.

use crate::events::catalog::{EventSpec, CATALOG};
use crate::events::mapping::{Condition, ForEach, Mapping, Source, MAPPINGS};
use crate::webhooks::WebhookConfig;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::Path;
use std::{fs, io};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
pub const README_BEGIN: &str =
    "<!-- BEGIN GENERATED event tables: `cargo run -p handler -- schemas` rewrites this part -->";
pub const README_END: &str = "<!-- END GENERATED event tables -->";
pub const API_BEGIN: &str = "<!-- BEGIN GENERATED API table: `cargo run -p handler -- schemas` rewrites this part -->";
pub const API_END: &str = "<!-- END GENERATED API table -->";

/// Every generated file, as (path relative to `schemas/`, contents).
pub fn files() -> Vec<(String, String)> {
    let mut files = vec![
        ("catalog.json".to_owned(), pretty(&catalog())),
        ("catalog.md".to_owned(), format!("# Event catalog\n\n{}", event_tables())),
        ("incoming-event.json".to_owned(), pretty(&incoming_event_schema())),
        ("webhook.json".to_owned(), pretty(&webhook_schema())),
        ("openapi.json".to_owned(), pretty(&crate::api::openapi())),
    ];
    files.extend(
        CATALOG.iter().map(|e| (format!("events/{}.json", file_stem(e.name)), pretty(&payload_schema(e, true)))),
    );
    files
}

/// The catalog and the mapping table, as served at `GET /api/v1/events/catalog`.
pub fn catalog() -> Value {
    json!({"events": CATALOG, "mappings": MAPPINGS})
}

/// `service:subscribed` → `service.subscribed`: colons are not allowed in file names everywhere.
fn file_stem(event: &str) -> String {
    event.replace(':', ".")
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema of an event's payload. Undocumented keys are allowed (and dropped), so producers that send
/// more keep working.
pub fn payload_schema(event: &EventSpec, standalone: bool) -> Value {
    let properties: Map<String, Value> = event
        .fields
        .iter()
        .map(|f| {
            let mut schema = f.ty.json_schema();
            schema["description"] = Value::from(f.description);
            (f.name.to_owned(), schema)
        })
        .collect();
    let mut schema = Map::new();
    if standalone {
        schema.insert("$schema".to_owned(), Value::from(DRAFT));
    }
    schema.extend(json_object(json!({
        "title": format!("{} payload", event.name),
        "description": event.description,
        "type": "object",
        "properties": properties,
        "required": event.fields.iter().map(|f| f.name).collect::<Vec<_>>(),
    })));
    Value::Object(schema)
}

fn json_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The JSON Schema of a message the dispatcher accepts: one of the catalog's events.
pub fn incoming_event_schema() -> Value {
    incoming_event_schema_with(true)
}

/// With `standalone` false, payload schemas are inlined rather than in `$defs`, for embedding in OpenAPI.
pub fn incoming_event_schema_with(standalone: bool) -> Value {
    let variants: Vec<Value> = CATALOG
        .iter()
        .map(|e| {
            let required: &[&str] = if e.fields.is_empty() { &["name"] } else { &["name", "payload"] };
            json!({
                "type": "object",
                "properties": {
                    "name": {"const": e.name},
                    "payload": if standalone { json!({"$ref": format!("#/$defs/{}", file_stem(e.name))}) } else { payload_schema(e, false) },
                },
                "required": required,
            })
        })
        .collect();
    let mut schema = json!({
        "title": "Incoming event",
        "description": "A message sent to the dispatcher: an event name and its payload (a missing payload is `{}`).",
        "oneOf": variants,
    });
    if standalone {
        let defs: Map<String, Value> = CATALOG.iter().map(|e| (file_stem(e.name), payload_schema(e, false))).collect();
        schema["$defs"] = Value::Object(defs);
        let mut with_draft = Map::from_iter([("$schema".to_owned(), Value::from(DRAFT))]);
        with_draft.extend(json_object(schema));
        return Value::Object(with_draft);
    }
    schema
}

pub fn webhook_schema() -> Value {
    serde_json::to_value(schemars::schema_for!(WebhookConfig)).unwrap_or_default()
}

/// The three Markdown tables: public events, non-public events, and the mapping.
pub fn event_tables() -> String {
    let mut md = String::new();
    md.push_str("### Public events\n\nDelivered to the webhooks subscribed to them.\n\n");
    md.push_str("| Event | Payload | Description | Required attributes |\n|---|---|---|---|\n");
    for e in CATALOG.iter().filter(|e| e.is_public()) {
        let required = e.required_attributes().iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(md, "| `{}` | {} | {} | {} |", e.name, fields_cell(e), e.description, required);
    }
    md.push_str(
        "\n### Non-public events\n\nAccepted from internal services, never delivered as they are: the mapping ",
    );
    md.push_str("below turns them into public events.\n\n| Event | Payload | Description |\n|---|---|---|\n");
    for e in CATALOG.iter().filter(|e| !e.is_public()) {
        let _ = writeln!(md, "| `{}` | {} | {} |", e.name, fields_cell(e), e.description);
    }
    md.push_str("\n### Mapping\n\nEach emitted event is then routed like any public event.\n\n");
    md.push_str("| From | When | Emits | Once for each | Payload |\n|---|---|---|---|---|\n");
    for m in MAPPINGS {
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
    let fields: Vec<String> =
        event.fields.iter().map(|f| format!("`{}` ({}): {}", f.name, f.ty.label(), f.description)).collect();
    fields.join("<br>")
}

fn when_cell(mapping: &Mapping) -> String {
    match mapping.when {
        Condition::Always => "always".to_owned(),
        Condition::FieldEquals(field, value) => format!("`{field}` is `{value}`"),
    }
}

fn for_each_cell(mapping: &Mapping) -> String {
    let ForEach::WebhookAttribute(attribute) = mapping.for_each;
    format!("distinct `{attribute}` attribute of the enabled webhooks")
}

fn payload_cell(mapping: &Mapping) -> String {
    let fields: Vec<String> = mapping
        .payload
        .iter()
        .map(|(field, source)| match source {
            Source::Field(from) => format!("`{field}` = event's `{from}`"),
            Source::WebhookAttribute(attribute) => format!("`{field}` = that `{attribute}`"),
        })
        .collect();
    fields.join(", ")
}

/// The API endpoints as a Markdown table, from the route table the router is built from.
pub fn api_table() -> String {
    let mut md = String::from("| method | path | what |\n|---|---|---|\n");
    for route in crate::api::routes() {
        let _ =
            writeln!(md, "| `{}` | `/api/v1{}` | {} |", route.method, route.path, route.summary.replace('|', "\\|"));
    }
    md
}

/// `readme` with the generated parts (between their markers) replaced by what the code generates now.
pub fn splice_readme(readme: &str) -> Result<String, String> {
    let readme = splice(readme, README_BEGIN, README_END, &event_tables())?;
    splice(&readme, API_BEGIN, API_END, &api_table())
}

fn splice(text: &str, begin: &str, end_marker: &str, contents: &str) -> Result<String, String> {
    let start = text.find(begin).ok_or_else(|| format!("README.md has no line {begin}"))?;
    let end = text
        .find(end_marker)
        .filter(|&end| end > start)
        .ok_or_else(|| format!("README.md has no line {end_marker} after {begin}"))?;
    Ok(format!("{}{begin}\n\n{contents}\n{}", &text[..start], &text[end..]))
}

/// Writes `schemas/` and the README tables under the repository root `root`; removes stale generated files.
pub fn write(root: &Path) -> io::Result<()> {
    let dir = root.join("schemas");
    for stale in unexpected_files(&dir)? {
        fs::remove_file(dir.join(stale))?;
    }
    for (path, contents) in files() {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, contents)?;
    }
    let readme = root.join("README.md");
    let spliced = splice_readme(&fs::read_to_string(&readme)?).map_err(io::Error::other)?;
    fs::write(readme, spliced)
}

/// The generated files under `root` that differ from what the code generates now, missing ones, and files in
/// `schemas/` that the code no longer generates. Empty when everything is fresh.
pub fn stale(root: &Path) -> io::Result<Vec<String>> {
    let dir = root.join("schemas");
    let mut stale: Vec<String> =
        unexpected_files(&dir)?.into_iter().map(|f| format!("schemas/{f} (no longer generated)")).collect();
    for (path, contents) in files() {
        if fs::read_to_string(dir.join(&path)).ok().as_deref() != Some(contents.as_str()) {
            stale.push(format!("schemas/{path}"));
        }
    }
    let readme = fs::read_to_string(root.join("README.md"))?;
    if splice_readme(&readme).ok().as_deref() != Some(readme.as_str()) {
        stale.push("README.md (event tables)".to_owned());
    }
    Ok(stale)
}

fn unexpected_files(dir: &Path) -> io::Result<Vec<String>> {
    let expected: Vec<String> = files().into_iter().map(|(path, _)| path).collect();
    let mut found = Vec::new();
    for sub in ["", "events"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let path = Path::new(sub).join(entry.file_name()).to_string_lossy().into_owned();
                if !expected.contains(&path) {
                    found.push(path);
                }
            }
        }
    }
    Ok(found)
}
