//! The committed schemas/ and README tables are what the code generates now.

use std::path::Path;
use std::process::Command;

fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn committed_schemas_and_readme_tables_are_fresh() {
    let stale = dispatcher::schemas::stale(repository_root()).unwrap();
    assert!(stale.is_empty(), "stale generated files, run `cargo run -p handler -- schemas`: {stale:?}");
}

#[test]
fn the_schemas_command_detects_and_repairs_stale_files() {
    let dir = std::env::temp_dir().join(format!("dispatcher-schemas-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("schemas/events")).unwrap();
    let readme = format!(
        "# x\n{}\nold table\n{}\nbetween\n{}\n{}\nafter\n",
        dispatcher::schemas::README_BEGIN,
        dispatcher::schemas::README_END,
        dispatcher::schemas::API_BEGIN,
        dispatcher::schemas::API_END
    );
    std::fs::write(dir.join("README.md"), readme).unwrap();
    std::fs::write(dir.join("schemas/events/removed.event.json"), "{}").unwrap();
    let handler = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_handler")).args(args).arg("--root").arg(&dir).output().unwrap()
    };

    let check = handler(&["schemas", "--check"]);
    assert!(!check.status.success());
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("schemas/events/removed.event.json (no longer generated)"), "{stderr}");
    assert!(stderr.contains("schemas/catalog.json") && stderr.contains("README.md (event tables)"), "{stderr}");

    assert!(handler(&["schemas"]).status.success());
    assert!(handler(&["schemas", "--check"]).status.success());
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(
        readme.contains("| `service:subscribed` |") && readme.ends_with("after\n") && !readme.contains("old table")
    );
    assert!(readme.contains("| `POST` | `/api/v1/events` |") && readme.contains("between"));
    assert!(!dir.join("schemas/events/removed.event.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
