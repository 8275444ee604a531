//! `testagent load` as a user runs it: the real binary, starting the real `handler local`, with a small load.

use serde_json::Value;
use std::process::Command;

fn load(args: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
        .args(["load", "--json", "--stall-seconds", "20"])
        .args(args)
        .output()
        .expect("testagent runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("a JSON report ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&output.stderr))
    });
    (output.status.success(), report)
}

#[test]
fn a_fan_out_run_reports_every_delivery_exactly_once_with_rates_and_resources() {
    let (ok, report) = load(&["--webhooks", "3", "--events", "200", "--concurrency", "8"]);
    assert!(ok, "{report:#}");
    assert_eq!(
        (&report["deliveriesExpected"], &report["deliveriesReceived"], &report["lost"], &report["duplicates"]),
        (&Value::from(600), &Value::from(600), &Value::from(0), &Value::from(0))
    );
    for rate in ["ingestPerSecond", "deliveriesPerSecond"] {
        assert!(report[rate].as_f64().is_some_and(|r| r > 0.0), "{rate}: {report:#}");
    }
    let latency = &report["latencyMs"];
    assert!(latency["p50"].as_f64() <= latency["p99"].as_f64() && latency["p99"].as_f64() <= latency["max"].as_f64());
    let handler = &report["handler"];
    assert!(handler["peakRssMb"].as_f64().is_some_and(|mb| mb > 1.0), "RSS is read from /proc: {handler}");
    assert!(handler["readyMs"].as_f64().is_some_and(|ms| ms > 0.0));
    // Its own CPU comes from /proc too: publishing 200 events and receiving 600 deliveries is not free.
    assert!(report["loadCpuSeconds"].as_f64().is_some_and(|s| s > 0.0), "{report:#}");
}

#[test]
fn a_backlog_run_holds_deliveries_until_everything_is_published() {
    let (ok, report) = load(&["--events", "300", "--concurrency", "4", "--backlog"]);
    assert!(ok, "{report:#}");
    assert_eq!((&report["deliveriesReceived"], &report["lost"]), (&Value::from(300), &Value::from(0)));
    let (ingest, first) = (report["ingestMs"].as_f64().unwrap(), report["firstArrivalMs"].as_f64().unwrap());
    assert!(first >= ingest, "held deliveries arrive only after publishing ends: {report:#}");
}

#[test]
fn bad_arguments_are_refused_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_testagent")).args(["load", "--events", "0"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--events"));
}

#[test]
fn api_load_reads_with_either_credential_and_reports_its_rate() {
    for credential in ["operator", "tenant"] {
        let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
            .args(["api-load", "--json", "--requests", "300", "--concurrency", "4", "--credential", credential])
            .output()
            .expect("testagent runs");
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("a JSON report ({e}): {}", String::from_utf8_lossy(&output.stderr)));
        assert!(output.status.success(), "{report:#}");
        assert_eq!((&report["credential"], &report["failures"]), (&Value::from(credential), &Value::from(0)));
        assert!(report["requestsPerSecond"].as_f64().is_some_and(|r| r > 0.0), "{report:#}");
    }
}
