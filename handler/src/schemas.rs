//! What `handler schemas` writes: what the code documents of itself (the catalog's JSON Schemas and tables,
//! `dispatcher_core::events::docs`; the registration's schema; the OpenAPI document, `crate::http::openapi`)
//! into `schemas/`, and the event and API tables into the README. A test fails when the committed copies are
//! stale.

use dispatcher_core::events::{docs, CATALOG};
use dispatcher_core::webhooks::registration;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::{fs, io};

pub const README_BEGIN: &str =
    "<!-- BEGIN GENERATED event tables: `cargo run -p handler -- schemas` rewrites this part -->";
pub const README_END: &str = "<!-- END GENERATED event tables -->";
pub const API_BEGIN: &str = "<!-- BEGIN GENERATED API table: `cargo run -p handler -- schemas` rewrites this part -->";
pub const API_END: &str = "<!-- END GENERATED API table -->";

/// Every generated file, as (path relative to `schemas/`, contents).
pub fn files() -> Vec<(String, String)> {
    let mut files = vec![
        ("catalog.json".to_owned(), pretty(&docs::catalog())),
        ("catalog.md".to_owned(), format!("# Event catalog\n\n{}", docs::event_tables())),
        ("incoming-event.json".to_owned(), pretty(&docs::incoming_event_schema(true))),
        ("webhook.json".to_owned(), pretty(&registration::schema())),
        ("openapi.json".to_owned(), pretty(&serde_json::to_value(crate::http::openapi()).unwrap_or_default())),
    ];
    files.extend(
        CATALOG
            .iter()
            .map(|e| (format!("events/{}.json", docs::file_stem(e.name)), pretty(&docs::payload_schema(e, true)))),
    );
    files
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// The API endpoints as a Markdown table, from the OpenAPI document, in its order.
pub fn api_table() -> String {
    let mut md = String::from("| method | path | what |\n|---|---|---|\n");
    let api = serde_json::to_value(crate::http::openapi()).unwrap_or_default();
    for (path, item) in api["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(summary) = item[method]["summary"].as_str() {
                let _ = writeln!(md, "| `{}` | `{path}` | {} |", method.to_uppercase(), summary.replace('|', "\\|"));
            }
        }
    }
    md
}

/// `readme` with the generated parts (between their markers) replaced by what the code generates now.
pub fn splice_readme(readme: &str) -> Result<String, String> {
    let readme = splice(readme, README_BEGIN, README_END, &docs::event_tables())?;
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
