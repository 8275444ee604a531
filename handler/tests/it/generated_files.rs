//! The committed schemas/ and the generated tables of docs/ (events.md, api.md) are what the code generates now.

use std::path::Path;
use std::process::Command;

fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn committed_schemas_and_doc_tables_are_fresh() {
    let stale = dispatcher::schemas::stale(repository_root()).unwrap();
    assert!(stale.is_empty(), "stale generated files, run `cargo run -p handler -- schemas`: {stale:?}");
}

#[test]
fn the_schemas_command_detects_and_repairs_stale_files() {
    use dispatcher::schemas::{API_BEGIN, API_END, API_PAGE, EVENTS_BEGIN, EVENTS_END, EVENTS_PAGE};
    let dir = std::env::temp_dir().join(format!("dispatcher-schemas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("schemas/events")).unwrap();
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    let handler = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_handler")).args(args).arg("--root").arg(&dir).output().unwrap()
    };

    // Not a repository root: the command names the pages it needs.
    let elsewhere = handler(&["schemas", "--check"]);
    assert!(!elsewhere.status.success());
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(stderr.contains(&format!("has no {EVENTS_PAGE} nor {API_PAGE}")), "{stderr}");

    std::fs::write(dir.join(EVENTS_PAGE), format!("# x\n{EVENTS_BEGIN}\nold table\n{EVENTS_END}\nafter\n")).unwrap();
    // A page without its end marker: an error naming the page, and nothing written.
    std::fs::write(dir.join(API_PAGE), format!("# y\nbefore\n{API_BEGIN}\nold table\n")).unwrap();
    let broken = handler(&["schemas"]);
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains(&format!("{API_PAGE} has no line {API_END}")), "{stderr}");
    assert!(std::fs::read_to_string(dir.join(EVENTS_PAGE)).unwrap().contains("old table"));

    std::fs::write(dir.join(API_PAGE), format!("# y\nbefore\n{API_BEGIN}\nold table\n{API_END}\nafter\n")).unwrap();
    std::fs::write(dir.join("schemas/events/removed.event.json"), "{}").unwrap();
    let check = handler(&["schemas", "--check"]);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("schemas/events/removed.event.json (no longer generated)"), "{stderr}");
    assert!(stderr.contains("schemas/catalog.json"), "{stderr}");
    assert!(stderr.contains("docs/events.md (event tables)") && stderr.contains("docs/api.md (API table)"), "{stderr}");

    assert!(handler(&["schemas"]).status.success());
    assert!(handler(&["schemas", "--check"]).status.success());
    let events = std::fs::read_to_string(dir.join(EVENTS_PAGE)).unwrap();
    assert!(
        events.starts_with("# x\n")
            && events.contains("| `service:subscribed` |")
            && events.ends_with("after\n")
            && !events.contains("old table"),
        "{events}"
    );
    let api = std::fs::read_to_string(dir.join(API_PAGE)).unwrap();
    assert!(
        api.contains("before\n") && api.contains("| `POST` | `/api/v1/events` |") && api.ends_with("after\n"),
        "{api}"
    );
    assert!(!api.contains("old table") && !api.contains("| `service:subscribed` |"), "{api}");
    assert!(!dir.join("schemas/events/removed.event.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
