//! Assembling the function app for `func azure functionapp publish <app> --custom`: the files of
//! `function-app/` (checked against what the handler expects, see [`check`]) and the `handler` binary at the
//! root, executable (docs/azure-functions.md §1 and §8).

use super::functions::{Binding, Function, FUNCTIONS};
use super::glibc::{self, BinaryError, Version};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Where the app's settings are listed, with a comment each.
pub const SETTINGS_EXAMPLE: &str = "local.settings.json.example";

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("the function app in {dir} does not match the handler:\n  {}", problems.join("\n  "))]
    Mismatch { dir: String, problems: Vec<String> },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("the binary {path} would not start on Azure's workers: {reason}")]
    Binary { path: String, reason: BinaryError },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PackageError + '_ {
    move |e| PackageError::Io { path: path.display().to_string(), reason: e.to_string() }
}

/// Every way in which the function app in `dir` differs from what the handler expects: host.json's custom
/// handler settings, each function's bindings, and app settings used (`%NAME%`, `connection`) but not listed
/// in local.settings.json.example.
pub fn check(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    match read_json(&dir.join("host.json")) {
        Ok(host) => check_host(&host, &mut problems),
        Err(problem) => problems.push(problem),
    }
    let mut used_settings = BTreeSet::new();
    for function in FUNCTIONS {
        let path = dir.join(function.name).join("function.json");
        match read_json(&path) {
            Ok(json) => check_function(function, &json, &mut problems, &mut used_settings),
            Err(problem) => problems.push(problem),
        }
    }
    for extra in function_folders(dir).into_iter().filter(|name| !FUNCTIONS.iter().any(|f| f.name == name)) {
        problems.push(format!("{extra}/function.json: the handler has no function {extra:?}"));
    }
    match listed_settings(&dir.join(SETTINGS_EXAMPLE)) {
        Ok(listed) => {
            for setting in used_settings.difference(&listed) {
                problems.push(format!("{SETTINGS_EXAMPLE}: the setting {setting:?} is used but not listed"));
            }
        }
        Err(problem) => problems.push(problem),
    }
    problems
}

fn check_host(host: &Value, problems: &mut Vec<String>) {
    let expect = |pointer: &str, wanted: Value, problems: &mut Vec<String>| {
        let found = host.pointer(pointer).cloned().unwrap_or(Value::Null);
        if found != wanted {
            problems.push(format!("host.json{}: {found} where the handler needs {wanted}", pointer.replace('/', ".")));
        }
    };
    expect("/version", "2.0".into(), problems);
    // `func ... publish` marks as executable only the file whose path equals this exactly
    // (docs/azure-functions.md §1).
    expect("/customHandler/description/defaultExecutablePath", "handler".into(), problems);
    expect("/customHandler/enableForwardingHttpRequest", true.into(), problems);
    expect("/extensionBundle/id", "Microsoft.Azure.Functions.ExtensionBundle".into(), problems);
    expect("/extensionBundle/version", "[4.*, 5.0.0)".into(), problems);
    expect("/extensions/http/routePrefix", "api".into(), problems);
    if !host.pointer("/extensions/serviceBus/maxConcurrentCalls").is_some_and(Value::is_u64) {
        problems.push("host.json.extensions.serviceBus.maxConcurrentCalls: missing".into());
    }
}

fn check_function(function: &Function, json: &Value, problems: &mut Vec<String>, settings: &mut BTreeSet<String>) {
    let file = format!("{}/function.json", function.name);
    let bindings = json.get("bindings").and_then(Value::as_array).cloned().unwrap_or_default();
    let expected: Vec<(&Binding, &str)> =
        std::iter::once((&function.trigger, "in")).chain(function.outputs.iter().map(|b| (b, "out"))).collect();
    for (binding, direction) in &expected {
        let Some(found) = bindings.iter().find(|b| b["name"] == binding.name) else {
            problems.push(format!("{file}: no binding named {:?} ({} {direction})", binding.name, binding.kind));
            continue;
        };
        let mut field = |key: &str, wanted: Value| {
            if found[key] != wanted {
                problems.push(format!(
                    "{file}: binding {:?}.{key} is {} where the handler needs {wanted}",
                    binding.name, found[key]
                ));
            }
        };
        field("type", binding.kind.into());
        field("direction", (*direction).into());
        if let Some(queue) = binding.queue {
            field("queueName", queue.into());
        }
        if binding.kind == "serviceBusTrigger" {
            // Binary: the body arrives as base64 of its exact bytes; a custom handler cannot settle messages.
            field("dataType", "binary".into());
            field("autoCompleteMessages", true.into());
        }
    }
    for found in &bindings {
        if !expected.iter().any(|(b, _)| found["name"] == b.name) {
            problems.push(format!("{file}: binding {} is not one the handler reads or writes", found["name"]));
        }
        for key in ["queueName", "connection"] {
            if let Some(text) = found[key].as_str() {
                settings.extend(used_settings(key, text));
            }
        }
    }
}

/// `%NAME%` in a queue name; the whole value of `connection` (an app setting, or the prefix of identity-based
/// ones, `<connection>__fullyQualifiedNamespace`, which the example names as the plain setting).
fn used_settings(key: &str, text: &str) -> Vec<String> {
    if key == "connection" {
        return vec![text.to_owned()];
    }
    text.split('%').skip(1).step_by(2).filter(|name| !name.is_empty()).map(str::to_owned).collect()
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// The `Values` of local.settings.json.example, whose whole-line `//` comments the Functions host accepts.
fn listed_settings(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: String = text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let value: Value = serde_json::from_str(&json).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let values =
        value.get("Values").and_then(Value::as_object).ok_or_else(|| format!("{}: no Values", path.display()))?;
    Ok(values.keys().cloned().collect())
}

fn function_folders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("function.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// Copies the checked function app from `source` and `binary` (as `handler`, executable) into `out`, which
/// must not exist yet or be empty. The binary must be an x86_64 Linux executable that needs no glibc newer
/// than `max_glibc` ([`glibc::FLOOR`] unless the workers are known to have a newer one). Returns the files written, relative to `out`.
pub fn assemble(source: &Path, binary: &Path, out: &Path, max_glibc: Version) -> Result<Vec<PathBuf>, PackageError> {
    let bytes = std::fs::read(binary).map_err(io(binary))?;
    glibc::check(&bytes, max_glibc)
        .map_err(|reason| PackageError::Binary { path: binary.display().to_string(), reason })?;
    let problems = check(source);
    if !problems.is_empty() {
        return Err(PackageError::Mismatch { dir: source.display().to_string(), problems });
    }
    if out.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(PackageError::Io { path: out.display().to_string(), reason: "exists and is not empty".into() });
    }
    let mut files: Vec<PathBuf> = ["host.json", ".funcignore"].iter().map(PathBuf::from).collect();
    files.extend(FUNCTIONS.iter().map(|f| Path::new(f.name).join("function.json")));
    for file in &files {
        let (from, to) = (source.join(file), out.join(file));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io(&from))?;
    }
    let handler = out.join("handler");
    std::fs::write(&handler, &bytes).map_err(io(&handler))?;
    set_executable(&handler)?;
    files.push(PathBuf::from("handler"));
    Ok(files)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(io(path))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<(), PackageError> {
    Ok(())
}
