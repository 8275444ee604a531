//! `scripts/deploy-azure.sh`, run as a user runs it, with stand-ins for `az`, `func` and `curl` that record
//! their arguments and answer as Azure does (Azure cannot be reached from here): the steps of a first and a
//! second run on Flex Consumption (the encryption key and the operator key stored once, never on a command line,
//! the operator key made the function key `operator` and used to reach the API), the zip deploy of
//! the other plans, the outbound IP and alerts, `--what-if`, a failure midway that stops with the step that
//! failed, and a name refused before anything is created.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Stand-ins: each appends `<tool> <args>` (and, for `func`, the folder it ran in) to `$STANDIN_LOG`; `az`
/// answers the deployment's outputs and the key, and fails the step `$STANDIN_FAIL` names.
const AZ: &str = r#"#!/usr/bin/env bash
echo "az $*" >> "$STANDIN_LOG"
case "$*" in
  "ad signed-in-user show"*) echo "5d0f-deployer" ;;
  "deployment group create"*)
    [ "${STANDIN_FAIL:-}" = deployment ] && { echo "ERROR: InvalidTemplateDeployment" >&2; exit 1; }
    case "$*" in *outboundIp=true*) ip="20.50.1.7" ;; *) ip="" ;; esac
    printf 'acme-x7k2\nacme-kv-x7k2\n%s\n' "$ip"
    ;;
  "deployment group what-if"*) echo "Resource changes: 3 to create, 16 no change." ;;
  "keyvault secret show"*)
    while [ $# -gt 0 ]; do case "$1" in --name) name="$2" ;; --query) query="$2" ;; esac; shift; done
    if [ "${STANDIN_FAIL:-}" = forbidden ] && [ ! -f "$STANDIN_LOG.refused.$name" ]; then
      touch "$STANDIN_LOG.refused.$name"
      echo "(Forbidden) Caller is not authorized to perform action on resource." >&2
      exit 1
    fi
    if [ -f "$STANDIN_LOG.key.$name" ]; then
      [ "$query" = value ] && { cat "$STANDIN_LOG.key.$name"; echo; exit 0; }
      echo "https://acme-kv-x7k2.vault.azure.net/secrets/$name/1"; exit 0
    fi
    echo "(SecretNotFound) A secret with (name/id) $name was not found in this key vault." >&2
    exit 3
    ;;
  "keyvault secret set"*)
    while [ $# -gt 0 ]; do case "$1" in --name) name="$2" ;; --file) file="$2" ;; esac; shift; done
    tr -d '\n' < "$file" > "$STANDIN_LOG.key.$name"
    ;;
  "rest --method get"*) echo "Resolved" ;;
  "rest --method put"*)
    while [ $# -gt 0 ]; do [ "$1" = --body ] && cat "${2#@}" > "$STANDIN_LOG.put"; shift; done
    ;;
esac
"#;
const FUNC: &str = "#!/usr/bin/env bash\necho \"func $* (in $PWD)\" >> \"$STANDIN_LOG\"\n";
/// Records its arguments, and what it was told on stdin (`--config -`).
const CURL: &str = "#!/usr/bin/env bash\necho \"curl $*\" >> \"$STANDIN_LOG\"\ncat > \"$STANDIN_LOG.curl\"\n";

struct Run {
    output: Output,
    calls: Vec<String>,
    /// What the stand-in vault holds as the encryption key.
    stored_key: Option<String>,
    /// What it holds as the operator key.
    operator_key: Option<String>,
    /// The body of the function key's PUT.
    function_key: String,
    /// What curl was told on stdin.
    curl_config: String,
}

fn deploy(name: &str, args: &[&str], fail: Option<&str>) -> Run {
    deploy_in(&testkit::temp_dir(&format!("deploy-{name}")), args, fail)
}

/// Runs the script with its stand-ins in `dir` (a second run in the same `dir` finds what the first stored).
fn deploy_in(dir: &Path, args: &[&str], fail: Option<&str>) -> Run {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (tool, script) in [("az", AZ), ("func", FUNC), ("curl", CURL)] {
        let path = bin.join(tool);
        std::fs::write(&path, script).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    let package = dir.join("function-app");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("handler"), "#!/bin/sh\n").unwrap();
    Command::new("chmod").arg("+x").arg(package.join("handler")).status().unwrap();
    let log = dir.join("calls.log");
    std::fs::write(&log, "").unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("bash");
    command.arg(repository().join("scripts/deploy-azure.sh")).args(args).current_dir(dir);
    if !args.contains(&"--package") {
        command.args(["--package", package.to_str().unwrap()]);
    }
    command.env("PATH", path).env("STANDIN_LOG", &log).env("DEPLOY_AZURE_POLL_SECONDS", "0");
    if let Some(step) = fail {
        command.env("STANDIN_FAIL", step);
    }
    let output = command.output().unwrap();
    let calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|line| line.replace(&package.display().to_string(), "<package>"))
        .map(|line| {
            let Some((before, after)) = line.split_once("--file ").or_else(|| line.split_once("--body @")) else {
                return line;
            };
            let flag = if line.contains("--file ") { "--file" } else { "--body" };
            let rest = after.split_once(' ').map_or("", |(_, rest)| rest);
            format!("{before}{flag} <file> {rest}").replace("--body <file>", "--body @<file>")
        })
        .collect();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let stored_key = read("calls.log.key.dispatcher-encryption-key");
    let operator_key = read("calls.log.key.dispatcher-operator-key");
    let function_key = read("calls.log.put").unwrap_or_default();
    let curl_config = read("calls.log.curl").unwrap_or_default();
    Run { output, calls, stored_key, operator_key, function_key, curl_config }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const FLEX: [&str; 4] = ["--name", "acme", "--location", "westeurope"];

#[test]
fn a_flex_consumption_deploy_creates_stores_a_key_publishes_with_core_tools_and_waits_for_the_api() {
    let dir = testkit::temp_dir("deploy-flex");
    let first = deploy_in(&dir, &FLEX, None);
    assert!(first.output.status.success(), "{}", text(&first.output.stderr));
    let deployed = [
        "az ad signed-in-user show --query id --output tsv",
        "az group create --name acme --location westeurope --output none",
        "az deployment group create --resource-group acme --name dispatcher --template-file infra/main.json \
         --parameters name=acme hostingPlan=FlexConsumption outboundIp=false alertEmail= deployerObjectId=5d0f-deployer \
         --query properties.outputs.[functionApp.value, keyVault.value, outboundIpAddress.value] --output tsv",
    ];
    let secret = |name: &str| {
        [format!("az keyvault secret show --vault-name acme-kv-x7k2 --name {name} --query id --output tsv")]
    };
    let stored = |name: &str| {
        format!("az keyvault secret set --vault-name acme-kv-x7k2 --name {name} --file <file> --encoding utf-8 --output none")
    };
    let status = |setting: &str| {
        format!(
            "az rest --method get --url https://management.azure.com/subscriptions/{{subscriptionId}}/resourceGroups/\
             acme/providers/Microsoft.Web/sites/acme-x7k2/config/configreferences/appsettings/{setting}?\
             api-version=2025-05-01 --query properties.status --output tsv"
        )
    };
    let published = [
        "az functionapp config appsettings set --resource-group acme --name acme-x7k2 --settings \
         DISPATCHER_ENCRYPTION_KEY=@Microsoft.KeyVault(VaultName=acme-kv-x7k2;SecretName=dispatcher-encryption-key) \
         DISPATCHER_API_KEY=@Microsoft.KeyVault(VaultName=acme-kv-x7k2;SecretName=dispatcher-operator-key) --output none"
            .to_owned(),
        status("DISPATCHER_ENCRYPTION_KEY"),
        status("DISPATCHER_API_KEY"),
        "func azure functionapp publish acme-x7k2 --custom (in <package>)".to_owned(),
        "az keyvault secret show --vault-name acme-kv-x7k2 --name dispatcher-operator-key --query value --output tsv"
            .to_owned(),
        "az rest --method put --url https://management.azure.com/subscriptions/{subscriptionId}/resourceGroups/acme/\
         providers/Microsoft.Web/sites/acme-x7k2/host/default/functionKeys/operator?api-version=2025-05-01 \
         --body @<file> --output none"
            .to_owned(),
        "curl --silent --fail --max-time 10 --config - https://acme-x7k2.azurewebsites.net/api/v1/info".to_owned(),
    ];
    let deployed: Vec<String> = deployed.iter().map(|c| c.to_string()).collect();
    let first_run: Vec<String> = [
        &deployed[..],
        &secret("dispatcher-encryption-key"),
        &[stored("dispatcher-encryption-key")],
        &secret("dispatcher-operator-key"),
        &[stored("dispatcher-operator-key")],
        &published[..],
    ]
    .concat();
    assert_eq!(first.calls, first_run);
    let key = first.stored_key.expect("a key stored");
    assert_eq!(base64_len(&key), 32, "32 random bytes, base64: {key:?}");
    let operator = first.operator_key.expect("an operator key stored");
    assert!(operator.len() == 48 && operator.bytes().all(|b| b.is_ascii_hexdigit()), "24 random bytes: {operator:?}");
    for secret in [&key, &operator] {
        assert!(first.calls.iter().all(|call| !call.contains(secret.as_str())), "no key on a command line");
    }
    assert_eq!(
        first.function_key,
        format!("{{\"properties\": {{\"name\": \"operator\", \"value\": \"{operator}\"}}}}")
    );
    assert_eq!(first.curl_config, format!("header = \"x-functions-key: {operator}\"\n"), "the operator key on stdin");
    let printed = text(&first.output.stdout);
    assert!(printed.contains("API     https://acme-x7k2.azurewebsites.net/api/v1"), "{printed}");
    assert!(printed.contains("portal  https://acme-x7k2.azurewebsites.net/api/portal/"), "{printed}");
    assert!(!printed.contains(&operator) && !printed.contains("outbound IP"), "{printed}");

    // Again: every step creates or updates in place, and the key, there already, is kept.
    let second = deploy_in(&dir, &FLEX, None);
    assert!(second.output.status.success(), "{}", text(&second.output.stderr));
    let second_run: Vec<String> =
        [&deployed[..], &secret("dispatcher-encryption-key"), &secret("dispatcher-operator-key"), &published[..]]
            .concat();
    assert_eq!(second.calls, second_run);
    assert_eq!(second.stored_key.as_deref(), Some(key.as_str()), "never replaced");
    assert_eq!(second.operator_key.as_deref(), Some(operator.as_str()), "never replaced");
}

#[test]
fn a_vault_that_refuses_for_a_while_is_asked_again_and_never_given_a_second_key() {
    let dir = testkit::temp_dir("deploy-forbidden");
    let first = deploy_in(&dir, &FLEX, None);
    let key = first.stored_key.expect("stored");
    // The deployer's right to the vault not there yet: refused once, then the key is found and kept.
    let again = deploy_in(&dir, &FLEX, Some("forbidden"));
    assert!(again.output.status.success(), "{}", text(&again.output.stderr));
    let shows =
        again.calls.iter().filter(|c| c.starts_with("az keyvault secret show") && c.contains("--query id")).count();
    let sets = again.calls.iter().filter(|c| c.starts_with("az keyvault secret set")).count();
    assert_eq!((shows, sets), (4, 0), "each key asked for twice, none made again: {:?}", again.calls);
    assert_eq!(again.stored_key.as_deref(), Some(key.as_str()));
}

fn base64_len(text: &str) -> usize {
    let padding = text.chars().rev().take_while(|c| *c == '=').count();
    text.len() / 4 * 3 - padding
}

#[test]
fn the_outbound_ip_and_the_alerts_are_asked_for_and_the_address_printed() {
    let args = [&FLEX[..], &["--outbound-ip", "--alert-email", "ops@acme.example"]].concat();
    let run = deploy("outbound", &args, None);
    assert!(run.output.status.success(), "{}", text(&run.output.stderr));
    assert_eq!(run.calls[1], "az provider register --namespace Microsoft.App --wait", "Flex joins VNets through it");
    let deployment = run.calls.iter().find(|call| call.starts_with("az deployment group create")).unwrap();
    assert!(deployment.contains("outboundIp=true alertEmail=ops@acme.example"), "{deployment}");
    assert!(text(&run.output.stdout).contains("outbound IP  20.50.1.7"), "{}", text(&run.output.stdout));
    let bad = deploy("bad-email", &[&FLEX[..], &["--alert-email", "ops"]].concat(), None);
    assert!(text(&bad.output.stderr).contains("--alert-email ops: not an email address"));
    assert!(bad.calls.is_empty());
}

#[test]
fn a_package_given_relative_to_where_the_script_is_started_is_found() {
    let run = deploy("relative", &[&FLEX[..], &["--package", "function-app"]].concat(), None);
    assert!(run.output.status.success(), "{}", text(&run.output.stderr));
    assert!(
        run.calls.iter().any(|call| call == "func azure functionapp publish acme-x7k2 --custom (in <package>)"),
        "{:?}",
        run.calls
    );
}

#[test]
fn the_other_plans_are_published_with_a_zip_deploy_not_core_tools() {
    let run = deploy("ep1", &[&FLEX[..], &["--plan", "ep1", "--resource-group", "dispatcher"]].concat(), None);
    assert!(run.output.status.success(), "{}", text(&run.output.stderr));
    assert!(run.calls[2].contains("--parameters name=acme hostingPlan=ElasticPremium"), "{:?}", run.calls);
    let deploy = run.calls.iter().find(|call| call.starts_with("az functionapp deploy")).unwrap();
    assert!(
        deploy.starts_with("az functionapp deploy --resource-group dispatcher --name acme-x7k2 --src-path ")
            && deploy.ends_with("/function-app.zip --type zip --output none"),
        "{:?}",
        run.calls
    );
    assert!(run.calls.iter().all(|call| !call.starts_with("func ")), "{:?}", run.calls);
}

#[test]
fn what_if_shows_the_changes_and_publishes_nothing() {
    let run = deploy("what-if", &[&FLEX[..], &["--what-if"]].concat(), None);
    assert!(run.output.status.success(), "{}", text(&run.output.stderr));
    assert_eq!(run.calls.len(), 3, "{:?}", run.calls);
    assert!(run.calls[2].starts_with("az deployment group what-if --resource-group acme --name dispatcher"));
    assert!(text(&run.output.stdout).contains("Resource changes"));
}

#[test]
fn a_step_that_fails_stops_the_run_and_is_named() {
    let run = deploy("failing", &FLEX, Some("deployment"));
    assert_eq!(run.output.status.code(), Some(1));
    let stderr = text(&run.output.stderr);
    assert!(stderr.contains("deploy-azure: stopped: deploying the template failed"), "{stderr}");
    assert!(stderr.contains("InvalidTemplateDeployment"), "Azure's own words: {stderr}");
    assert_eq!(run.calls.len(), 3, "nothing after it: {:?}", run.calls);
}

#[test]
fn a_name_azure_would_refuse_is_refused_before_anything_is_created() {
    for name in ["1acme", "ac", "acme-prod", "Acme", "averyveryl0ng"] {
        let run = deploy("bad-name", &["--name", name, "--location", "westeurope"], None);
        assert_eq!(run.output.status.code(), Some(1), "{name}");
        assert!(text(&run.output.stderr).contains("starting with a letter"), "{name}: {}", text(&run.output.stderr));
        assert!(run.calls.is_empty(), "{name}: {:?}", run.calls);
    }
    let run = deploy("bad-plan", &[&FLEX[..], &["--plan", "consumption"]].concat(), None);
    assert!(text(&run.output.stderr).contains("--plan consumption: flex, ep1 or dedicated"));
    assert!(run.calls.is_empty());
    let missing = deploy("no-value", &["--location", "westeurope", "--name"], None);
    assert!(text(&missing.output.stderr).contains("--name needs a value"), "{}", text(&missing.output.stderr));
    assert!(missing.calls.is_empty());
}
