//! `testagent run` as a user runs it: it starts the real `handler local` (or `handler serve` on the local Cosmos DB
//! server, driven as the Functions host and Service Bus would), plays every scenario, prints one line each and a
//! summary, and exits non-zero on any failure.

use std::process::Command;
use std::sync::Mutex;

/// One full run at a time: each starts a dispatcher and plays timed scenarios (a rate limit measured at the
/// receiver), which several runs side by side on a small machine would starve.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[test]
fn every_scenario_passes_against_handler_local() {
    every_scenario_passes("local");
}

#[test]
fn every_scenario_passes_against_handler_serve_driven_as_the_functions_host() {
    every_scenario_passes("functions");
}

/// The built-in file's copy on disk, loaded as an operator's own file would be.
#[test]
fn every_scenario_passes_on_a_copy_of_the_built_in_catalog_loaded_from_disk() {
    for target in ["local", "functions"] {
        every_scenario_passes_with(target, &[&"--catalog", &catalog("handler/core/catalog/io.json")]);
    }
}

/// The downstream catalog's scenarios: the CTP table, hydrated, in each target's format; GraphQL errors.
#[test]
fn the_downstream_catalog_plays_on_both_targets() {
    let _turn = turn();
    for target in ["local", "functions"] {
        let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
            .args(["run", "--target", target, "--catalog"])
            .arg(catalog("__integrations__/catalogs/downstream.json"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{target}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let played: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok ")).collect();
        assert_eq!(played.len(), 2, "{target}: only the downstream scenarios play on its catalog: {stdout}");
        assert!(played.iter().all(|l| l.contains("downstream: ")), "{stdout}");
        assert_eq!(stdout.lines().last(), Some("2 passed, 0 failed"), "{stdout}");
    }
}

fn catalog(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn every_scenario_passes(target: &str) {
    every_scenario_passes_with(target, &[]);
}

fn every_scenario_passes_with(target: &str, extra: &[&dyn AsRef<std::ffi::OsStr>]) {
    let _turn = turn();
    let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
        .args(["run", "--target", target])
        .args(extra.iter().map(|a| a.as_ref()))
        .output()
        .expect("testagent runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let scenarios: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ok ") || l.starts_with("FAIL ")).collect();
    assert!(scenarios.len() >= 15 && scenarios.iter().all(|l| l.starts_with("ok ")), "{stdout}");
    assert!(scenarios.iter().any(|l| l.contains("original: ping:all")), "the original set runs: {stdout}");
    assert_eq!(lines.last().copied(), Some(format!("{} passed, 0 failed", scenarios.len()).as_str()));
}

#[test]
fn only_runs_the_scenarios_named_and_an_unknown_target_is_refused() {
    let _turn = turn();
    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).args(["run", "--only", "rotated"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"), "{stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).args(["run", "--target", "azure"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target \"azure\""));
}
