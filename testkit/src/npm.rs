//! The npm packages of the local servers (`cosmos/`, `servicebus/`), installed when missing. In a fresh clone the
//! tests of one binary, and the test agents they start, all want them at the same moment, and two `npm ci` in one
//! directory remove each other's files: an exclusive lock on a file beside `package.json` (released by the
//! kernel even when its holder is killed) lets one install while the others wait.

use std::fs::File;
use std::path::Path;
use std::process::Command;

/// Installs the packages of `dir` with `npm ci`, unless an install newer than its `package-lock.json` finished.
pub fn install(dir: &Path) -> Result<(), String> {
    let lock_path = dir.join(".npm-install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if installed(dir) {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("npm (Node.js 18 or later) is needed in {}: {e}", dir.display()))?;
    if !status.success() {
        return Err(format!("npm ci in {} failed ({status})", dir.display()));
    }
    Ok(())
}

/// npm writes `node_modules/.package-lock.json` last, once every package is in place.
fn installed(dir: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (modified(&dir.join("node_modules/.package-lock.json")), modified(&dir.join("package-lock.json"))) {
        (Some(installed), Some(wanted)) => installed >= wanted,
        _ => false,
    }
}
