//! The Python tools some tests run (an independent OpenAPI validator, the Azure SDK's models): each in a
//! virtual environment of its own, its pinned requirements installed once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The Python of a virtual environment at `venv`, with the packages of `requirements` (a file under
/// `__integrations__/`) installed when `import` fails in it.
pub fn venv(venv: &Path, requirements: &str, import: &str) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let python = venv.join("bin/python");
    let ready = Command::new(&python).args(["-c", &format!("import {import}")]).status().is_ok_and(|s| s.success());
    if !ready {
        let created = Command::new("python3").args(["-m", "venv"]).arg(venv).status().expect("python3 (3.9 or later)");
        assert!(created.success(), "python3 -m venv {}", venv.display());
        let requirements = crate::integrations().join(requirements);
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status()
            .expect("pip");
        assert!(installed.success(), "pip install -r {}", requirements.display());
    }
    python
}
