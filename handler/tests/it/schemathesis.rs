//! The OpenAPI document says exactly what the server does, for every credential: schemathesis 4 (installed
//! here from `__integrations__/schemathesis/requirements.txt`, in a virtual environment under `target/`) runs
//! every check (`--checks all`) in its examples, coverage, fuzzing and stateful phases against `handler local`,
//! once with the operator's key and once with a tenant's token, and finds nothing. Its one setting
//! (`schemathesis.toml`) says which statuses the document gives for a schema-valid request that the stored
//! state refuses: 412 and 422.

use crate::support::Dispatcher;
use crate::tenants::{Api, Credential};
use serde_json::json;
use std::path::Path;
use std::process::Command;

const KEY: &str = "schemathesis-operator-key-0123456789";

fn integrations() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../__integrations__"))
}

/// Runs schemathesis against the API at `root` with `header`; its report, and whether it found nothing.
fn schemathesis(root: &str, header: &str) -> (bool, String) {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("schemathesis-venv");
    let python = testkit::python::venv(&venv, "schemathesis/requirements.txt", "schemathesis");
    // Run where its cache (`.schemathesis/`) does not land in the repository.
    let output = Command::new(python)
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        // The strategies of the document's own formats (`hooks.py`).
        .env("PYTHONPATH", integrations().join("schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(integrations().join("schemathesis/schemathesis.toml"))
        .args(["run", &format!("{root}/api/v1/openapi.json"), "--url", root, "-H", header])
        .args(["--checks", "all", "--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "30", "--seed", "1", "--no-color"])
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_with_the_operator_key_or_a_tenant_token() {
    let dispatcher = Dispatcher::start("schemathesis", &[], &[("DISPATCHER_API_KEY", KEY), ("DISPATCHER_LOG", "warn")]);
    let root = dispatcher.api.trim_end_matches("/api/v1").to_owned();
    let api = Api::with_key(root.clone(), KEY);
    let tenant = json!({"id": "acme", "name": "Acme", "grants": {"serviceId": ["aServiceId12345"]}});
    api.expect(&Credential::Operator, "POST", "/tenants", tenant, 201).await;
    let issued = api.expect(&Credential::Operator, "POST", "/tenants/acme/tokens", json!({"name": "st"}), 201).await;
    let token = issued["token"].as_str().unwrap().to_owned();

    // The tenant first: the operator's run may delete the tenant and revoke its token.
    for header in [format!("Authorization: Bearer {token}"), format!("x-functions-key: {KEY}")] {
        let (passed, report) = tokio::task::spawn_blocking({
            let (root, header) = (root.clone(), header.clone());
            move || schemathesis(&root, &header)
        })
        .await
        .unwrap();
        assert!(passed, "{}: {report}", header.split(':').next().unwrap_or_default());
        assert!(report.contains("generated") && !report.contains("failure"), "{report}");
    }
}
