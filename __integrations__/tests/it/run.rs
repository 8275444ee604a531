//! `testagent run` as a user runs it: it starts the real `handler local` (or `handler serve` on the local Cosmos DB
//! server, driven as the Functions host and Service Bus would), plays every scenario, prints one line each and a
//! summary, and exits non-zero on any failure.

use std::process::Command;

#[test]
fn every_scenario_passes_against_handler_local() {
    every_scenario_passes("local");
}

#[test]
fn every_scenario_passes_against_handler_serve_driven_as_the_functions_host() {
    every_scenario_passes("functions");
}

fn every_scenario_passes(target: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
        .args(["run", "--target", target])
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
    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).args(["run", "--only", "rotated"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"), "{stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).args(["run", "--target", "azure"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target \"azure\""));
}
