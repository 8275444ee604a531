//! What `handler schemas` writes: what the code documents of itself (the catalog's JSON Schemas and tables,
//! `dispatcher_core::events::docs`; the registration's schema; the OpenAPI document, `crate::http::openapi`)
//! into `schemas/`, the event tables into `docs/events.md` and the API table into `docs/api.md`, each between its
//! marker lines. A test fails when the committed copies are stale.

use dispatcher_core::events::{catalog, docs, file};
use dispatcher_core::webhooks::registration;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::{fs, io};

/// The page holding the event tables (relative to the repository root), and the lines around them.
pub const EVENTS_PAGE: &str = "docs/events.md";
pub const EVENTS_BEGIN: &str =
    "<!-- BEGIN GENERATED event tables: `cargo run -p handler -- schemas` rewrites this part -->";
pub const EVENTS_END: &str = "<!-- END GENERATED event tables -->";
/// The page holding the API table (relative to the repository root), and the lines around it.
pub const API_PAGE: &str = "docs/api.md";
pub const API_BEGIN: &str = "<!-- BEGIN GENERATED API table: `cargo run -p handler -- schemas` rewrites this part -->";
pub const API_END: &str = "<!-- END GENERATED API table -->";

/// A Markdown page with a generated part: where it is, what the part is, its marker lines, and what goes between.
pub struct Page {
    /// Relative to the repository root.
    pub path: &'static str,
    /// What the generated part is, as stale files are listed: `docs/events.md (event tables)`.
    pub part: &'static str,
    begin: &'static str,
    end: &'static str,
    contents: fn() -> String,
}

/// The pages with generated parts.
pub const PAGES: [Page; 2] = [
    Page {
        path: EVENTS_PAGE,
        part: "event tables",
        begin: EVENTS_BEGIN,
        end: EVENTS_END,
        contents: docs::event_tables,
    },
    Page { path: API_PAGE, part: "API table", begin: API_BEGIN, end: API_END, contents: api_table },
];

impl Page {
    /// `text`, the page's contents, with its generated part replaced by what the code generates now; an error
    /// naming the page when a marker line is missing.
    pub fn splice(&self, text: &str) -> Result<String, MissingMarker> {
        splice(self.path, text, self.begin, self.end, &(self.contents)())
    }
}

/// Every generated file, as (path relative to `schemas/`, contents).
pub fn files() -> Vec<(String, String)> {
    let mut files = vec![
        ("catalog.json".to_owned(), pretty(&docs::catalog())),
        ("catalog.md".to_owned(), format!("# Event catalog\n\n{}", docs::event_tables())),
        ("incoming-event.json".to_owned(), pretty(&docs::incoming_event_schema(true))),
        ("catalog-file.json".to_owned(), pretty(&file::schema())),
        ("webhook.json".to_owned(), pretty(&registration::schema())),
        ("source.json".to_owned(), pretty(&dispatcher_core::inbound::source_schema(true))),
        ("openapi.json".to_owned(), pretty(&crate::http::openapi_json())),
    ];
    files.extend(
        catalog::current()
            .events
            .iter()
            .map(|e| (format!("events/{}.json", docs::file_stem(&e.name)), pretty(&docs::payload_schema(e, true)))),
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
    let api = crate::http::openapi_json();
    for (path, item) in api["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(summary) = item[method]["summary"].as_str() {
                let _ = writeln!(md, "| `{}` | `{path}` | {} |", method.to_uppercase(), summary.replace('|', "\\|"));
            }
        }
    }
    md
}

/// A page without the marker line its generated part starts or ends at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} has no line {marker}")]
pub struct MissingMarker {
    pub path: String,
    /// The marker, and for the end marker, `after` the begin marker.
    pub marker: String,
}

fn splice(path: &str, text: &str, begin: &str, end_marker: &str, contents: &str) -> Result<String, MissingMarker> {
    let missing = |marker: String| MissingMarker { path: path.to_owned(), marker };
    let start = text.find(begin).ok_or_else(|| missing(begin.to_owned()))?;
    let end = text
        .find(end_marker)
        .filter(|&end| end > start)
        .ok_or_else(|| missing(format!("{end_marker} after {begin}")))?;
    Ok(format!("{}{begin}\n\n{contents}\n{}", &text[..start], &text[end..]))
}

/// Writes `schemas/` and the generated parts of [`PAGES`] under the repository root `root`; removes stale
/// generated files. Every page is checked before anything is written.
pub fn write(root: &Path) -> io::Result<()> {
    let mut spliced = Vec::new();
    for page in &PAGES {
        let path = root.join(page.path);
        let text = fs::read_to_string(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", page.path)))?;
        spliced.push((path, page.splice(&text).map_err(io::Error::other)?));
    }
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
    for (path, text) in spliced {
        fs::write(path, text)?;
    }
    Ok(())
}

/// The generated files under `root` that differ from what the code generates now, missing ones, and files in
/// `schemas/` that the code no longer generates; the pages whose generated part is stale, or which are missing or
/// lack a marker line (with why). Empty when everything is fresh.
pub fn stale(root: &Path) -> io::Result<Vec<String>> {
    let dir = root.join("schemas");
    let mut stale: Vec<String> =
        unexpected_files(&dir)?.into_iter().map(|f| format!("schemas/{f} (no longer generated)")).collect();
    for (path, contents) in files() {
        if fs::read_to_string(dir.join(&path)).ok().as_deref() != Some(contents.as_str()) {
            stale.push(format!("schemas/{path}"));
        }
    }
    for page in &PAGES {
        let fresh = fs::read_to_string(root.join(page.path))
            .map_err(|e| e.to_string())
            .and_then(|text| Ok(page.splice(&text).map_err(|e| e.to_string())? == text));
        match fresh {
            Ok(true) => {}
            Ok(false) => stale.push(format!("{} ({})", page.path, page.part)),
            Err(why) => stale.push(format!("{} ({}: {why})", page.path, page.part)),
        }
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
