//! `handler package` as a user runs it: it assembles function-app/ and the binary into a folder for
//! `func azure functionapp publish --custom`, and refuses a function app the handler would not understand, or a
//! binary that needs a newer glibc than the workers have (small programs Zig links against a given glibc stand in
//! for the handler). The real build, `scripts/package-function-app.sh` (glibc 2.28, the `dist` profile), is a
//! step of its own in `.ci/run`: inside `cargo test` it would compile the whole handler a second time.

use dispatcher::runtime::azure::functions::FUNCTIONS;
use dispatcher::runtime::azure::glibc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

use testkit::temp_dir;

/// `handler package` of this build's binary, allowed the glibc this machine built it for: the glibc floor is
/// checked by the tests of the packaging script's build below.
fn package(source: &Path, out: &Path) -> Output {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_handler")).unwrap();
    let built_for = glibc::newest_required(&bytes).unwrap().map_or(glibc::FLOOR, |n| n.version);
    Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["package", "--out"])
        .arg(out)
        .arg("--source")
        .arg(source)
        .args(["--max-glibc", &built_for.to_string()])
        .output()
        .unwrap()
}

/// Runs `command` after `eval "$(scripts/zig-toolchain.sh --zig-only)"`, which installs Zig once.
fn with_zig(command: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("set -e; eval \"$(scripts/zig-toolchain.sh --zig-only)\"; {command}"))
        .current_dir(repo())
        .output()
        .unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn the_assembled_app_has_the_handler_at_its_root_and_every_function_the_handler_expects() {
    let out = temp_dir("assembled").join("app");
    let output = package(&repo().join("function-app"), &out);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let handler = out.join("handler");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&handler).unwrap().permissions().mode() & 0o111, 0o111, "handler is executable");
    assert_eq!(std::fs::read(&handler).unwrap(), std::fs::read(env!("CARGO_BIN_EXE_handler")).unwrap());
    let host = json(&out.join("host.json"));
    assert_eq!(host["customHandler"]["description"]["defaultExecutablePath"], "handler");
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    assert!(host["extensions"]["serviceBus"]["maxConcurrentCalls"].is_u64());

    // Read the example settings on our own: whole-line // comments, then JSON.
    let example = std::fs::read_to_string(repo().join("function-app/local.settings.json.example")).unwrap();
    let example: Value = serde_json::from_str(
        &example.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let listed = example["Values"].as_object().unwrap();
    for function in FUNCTIONS {
        let bindings = json(&out.join(function.name).join("function.json"))["bindings"].as_array().unwrap().clone();
        let trigger = bindings.iter().find(|b| b["direction"] == "in").unwrap();
        assert_eq!(
            (trigger["name"].as_str(), trigger["type"].as_str()),
            (Some(function.trigger.name), Some(function.trigger.kind))
        );
        for output in function.outputs {
            assert!(
                bindings.iter().any(|b| b["name"] == output.name && b["direction"] == "out"),
                "{}: {output:?}",
                function.name
            );
        }
        for binding in &bindings {
            for setting in binding["queueName"].as_str().unwrap_or("").split('%').skip(1).step_by(2) {
                assert!(listed.contains_key(setting), "{}: %{setting}% is not in the example settings", function.name);
            }
            if let Some(connection) = binding["connection"].as_str() {
                assert!(
                    listed.contains_key(connection),
                    "{}: {connection} is not in the example settings",
                    function.name
                );
            }
        }
    }
    let ignored = std::fs::read_to_string(out.join(".funcignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "target/") && ignored.lines().any(|l| l == "local.settings.json"));
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_function_app_the_handler_would_not_understand_is_refused_with_every_reason() {
    let source = temp_dir("broken-source");
    copy_dir(&repo().join("function-app"), &source);
    let path = source.join("DeliverWebhook/function.json");
    std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace("\"msg\"", "\"message\"")).unwrap();
    let example = source.join("local.settings.json.example");
    std::fs::write(&example, std::fs::read_to_string(&example).unwrap().replace("\"EVENTS_QUEUE\"", "\"EVENT_QUEUE\""))
        .unwrap();
    let out = temp_dir("refused").join("app");
    let output = package(&source, &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(r#"DeliverWebhook/function.json: no binding named "msg" (serviceBusTrigger in)"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"local.settings.json.example: the setting "EVENTS_QUEUE" is used but not listed"#),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written");

    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("leftover"), "x").unwrap();
    let output = package(&repo().join("function-app"), &out);
    assert!(String::from_utf8_lossy(&output.stderr).contains("exists and is not empty"));
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_dir_all(&source).unwrap();
}

#[test]
fn a_binary_that_needs_a_newer_glibc_than_the_workers_is_refused_naming_the_symbol() {
    let dir = temp_dir("glibc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.c"), "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n").unwrap();
    // Zig links against the glibc named: from 2.34 on, the C start-up is __libc_start_main@GLIBC_2.34.
    for version in ["2.28", "2.34"] {
        let built = with_zig(&format!(
            "python3 -m ziglang cc -target x86_64-linux-gnu.{version} {0}/hello.c -o {0}/hello-{version}",
            dir.display()
        ));
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    }
    let package = |binary: &str, out: &str| {
        Command::new(env!("CARGO_BIN_EXE_handler"))
            .args(["package", "--source"])
            .arg(repo().join("function-app"))
            .arg("--out")
            .arg(dir.join(out))
            .arg("--binary")
            .arg(dir.join(binary))
            .output()
            .unwrap()
    };
    let refused = package("hello-2.34", "refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("needs glibc 2.34 (symbol __libc_start_main@GLIBC_2.34), newer than 2.31"), "{stderr}");
    assert!(!dir.join("refused").exists(), "nothing is written");
    let accepted = package("hello-2.28", "accepted");
    assert!(accepted.status.success(), "{}", String::from_utf8_lossy(&accepted.stderr));
    let not_elf = package("hello.c", "not-elf");
    assert!(String::from_utf8_lossy(&not_elf.stderr).contains("not an x86_64 Linux executable"));
    std::fs::remove_dir_all(&dir).unwrap();
}
