//! The dependency tree keeps one HTTP client and one TLS stack (README "Performance", src/http_client.rs): a
//! second one costs minutes of every CI run on two cores, and OpenSSL's certificate parsing cost idle RSS.

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
