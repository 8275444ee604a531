//! What each layer may depend on. The pure core (`handler/core`) depends on no runtime crate: no async runtime,
//! HTTP stack, store or Azure SDK, so that its functions stay plain functions over plain data. And the whole tree
//! keeps one HTTP client and one TLS stack: a second one costs minutes of every CI run on two cores, and
//! OpenSSL's certificate parsing cost idle RSS (docs/performance.md).

use std::process::Command;

fn locked_packages() -> Vec<(String, String)> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    let mut packages = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |name: &str| {
            block.lines().find_map(|l| l.strip_prefix(&format!("{name} = \""))).map(|v| v.trim_end_matches('"'))
        };
        packages.push((field("name").unwrap().to_owned(), field("version").unwrap().to_owned()));
    }
    packages
}

#[test]
fn one_http_client_and_one_tls_stack() {
    let packages = locked_packages();
    assert!(packages.len() > 100, "Cargo.lock read: {} packages", packages.len());
    for name in ["openssl-sys", "native-tls", "aws-lc-sys", "aws-lc-rs", "hyper-tls"] {
        assert!(!packages.iter().any(|(n, _)| n == name), "{name} is in Cargo.lock: a second TLS stack");
    }
    for name in ["reqwest", "hyper", "rustls", "ring"] {
        let versions: Vec<&str> = packages.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        assert_eq!(versions.len(), 1, "{name}: one version, not {versions:?}");
    }
}

#[test]
fn the_core_depends_on_no_runtime_crate() {
    let output = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--locked", "-p", "dispatcher-core", "-e", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    let crates: Vec<&str> = tree.lines().filter_map(|line| line.split_whitespace().next()).collect();
    assert!(crates.contains(&"serde_json") && crates.contains(&"sha2"), "the tree was read: {crates:?}");
    for forbidden in [
        "tokio",
        "axum",
        "hyper",
        "reqwest",
        "rusqlite",
        "azure_core",
        "azure_core_amqp",
        "azure_data_cosmos",
        "futures-util",
        "async-trait",
    ] {
        assert!(!crates.contains(&forbidden), "the core depends on {forbidden}:\n{tree}");
    }
}
