//! The container stack (`docker-compose.yml`, `Dockerfile`) cannot run on a machine without Docker; this checks
//! what can be checked without it: every file it mounts or builds from exists, every name it refers to is
//! defined, every setting the function app's bindings and the handler read is given and known to the handler, and
//! the test agent's command and settings point at the services that serve them.

use dispatcher::adapters::servicebus::{Endpoint, ServiceBusConnection};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

pub(crate) fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose() -> Value {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"].get(name).unwrap_or_else(|| panic!("no service {name}"))
}

fn environment(service: &Value) -> &serde_json::Map<String, Value> {
    service["environment"].as_object().expect("environment as a map")
}

fn setting<'a>(service: &'a Value, name: &str) -> &'a str {
    environment(service).get(name).and_then(Value::as_str).unwrap_or_else(|| panic!("{name} is not set"))
}

/// The `--flag value` pairs of a service's command.
fn command_option<'a>(service: &'a Value, flag: &str) -> Option<&'a str> {
    let command: Vec<&str> = service["command"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    command.iter().position(|c| *c == flag).and_then(|i| command.get(i + 1).copied())
}

/// Every binding of the function app, with the function.json it is in.
pub(crate) fn bindings() -> Vec<(PathBuf, Value)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root().join("function-app")).unwrap() {
        let path = entry.unwrap().path().join("function.json");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let json: Value = serde_json::from_str(&text).unwrap();
        all.extend(json["bindings"].as_array().unwrap().iter().map(|b| (path.clone(), b.clone())));
    }
    all
}

/// The app settings a binding's queue name refers to (`%NAME%`).
pub(crate) fn queue_settings(binding: &Value) -> Vec<String> {
    let queue = binding["queueName"].as_str().unwrap_or_default();
    queue.split('%').skip(1).step_by(2).map(str::to_owned).collect()
}

pub(crate) fn help(binary: &str, subcommand: &str) -> String {
    let path = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join(binary);
    let path = if binary == "testagent" { PathBuf::from(env!("CARGO_BIN_EXE_testagent")) } else { path };
    let output = Command::new(&path)
        .args([subcommand, "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test --workspace builds it)", path.display()));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn every_built_and_mounted_file_exists_and_every_service_named_is_defined() {
    let compose = compose();
    let services = compose["services"].as_object().unwrap();
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["azurite", "cosmos", "functions", "servicebus", "sqledge", "testagent"]));
    let dockerfile = read("Dockerfile");
    let stages: BTreeSet<&str> =
        dockerfile.lines().filter(|l| l.starts_with("FROM ")).filter_map(|l| l.split(" AS ").nth(1)).collect();
    // The host image Microsoft lists for custom handlers; the in-process .NET image (dotnet:4) is out of support.
    let host = dockerfile.lines().find(|l| l.ends_with(" AS functions")).unwrap();
    assert_eq!(host, "FROM mcr.microsoft.com/azure-functions/base:4 AS functions");
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY --from=")) {
        let stage = line.trim_start_matches("COPY --from=").split(' ').next().unwrap();
        assert!(stages.contains(stage), "{line}: no stage {stage}");
    }
    for (name, service) in services {
        if let Some(build) = service.get("build") {
            let context = root().join(build["context"].as_str().unwrap());
            assert!(context.join(build["dockerfile"].as_str().unwrap()).is_file(), "{name}: its Dockerfile");
            let target = build["target"].as_str().unwrap();
            assert!(stages.contains(target), "{name}: the Dockerfile has no stage {target} (it has {stages:?})");
        } else {
            assert!(service["image"].as_str().is_some_and(|i| i.starts_with("mcr.microsoft.com/")), "{name}");
        }
        for volume in service.get("volumes").and_then(Value::as_array).into_iter().flatten() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(host.starts_with("./"), "{name}: {host} is not a path of the repository");
            assert!(root().join(host).exists(), "{name}: {host} does not exist");
        }
        for dependency in service.get("depends_on").and_then(Value::as_array).into_iter().flatten() {
            assert!(names.contains(dependency.as_str().unwrap()), "{name} depends on {dependency}, not a service");
        }
    }
    // The image of the function app is built as for Azure: glibc 2.28, assembled and checked by `handler package`.
    assert!(dockerfile.contains("RUN scripts/package-function-app.sh /function-app"));
    assert!(read("scripts/package-function-app.sh").contains("package --out \"$out\""));
    assert!(dockerfile.contains("COPY --from=build /function-app /home/site/wwwroot"));
}

#[test]
fn the_function_app_gets_every_setting_its_bindings_and_the_handler_read() {
    let compose = compose();
    let functions = service(&compose, "functions");
    let env = environment(functions);
    // What the bindings refer to: `connection` names and %SETTING% in queue names.
    for (path, binding) in bindings() {
        if let Some(connection) = binding["connection"].as_str() {
            assert!(env.contains_key(connection), "{}: {connection} is not set", path.display());
        }
        for name in queue_settings(&binding) {
            assert!(env.contains_key(&name), "{}: %{name}% is not set", path.display());
        }
    }
    assert_eq!(setting(functions, "FUNCTIONS_WORKER_RUNTIME"), "custom");
    assert!(setting(functions, "AzureWebJobsStorage").contains("http://azurite:10001/"));
    // Every other setting is one the handler reads (a typo would be ignored silently at run time).
    let handler_help = help("handler", "serve");
    for name in env.keys().filter(|n| !n.starts_with("FUNCTIONS_") && !n.starts_with("AzureWebJobs")) {
        let known = handler_help.contains(&format!("{name}=")) || handler_help.contains(&format!("[env: {name}]"));
        assert!(known, "the handler reads no setting {name}");
    }
    let connection = ServiceBusConnection::parse(setting(functions, "ServiceBusConnection")).unwrap();
    assert_eq!(connection.endpoint, Endpoint::Emulator { host: "servicebus".into(), port: 5672 });
    assert!(setting(functions, "COSMOSDB_ENDPOINT").starts_with("http://cosmos:8081"));
    assert_eq!(service(&compose, "cosmos")["environment"]["PROTOCOL"], "http");
}

#[test]
fn the_emulator_declares_the_queues_the_function_app_uses() {
    let compose = compose();
    let mount = service(&compose, "servicebus")["volumes"][0].as_str().unwrap();
    assert_eq!(mount, "./compose/servicebus/Config.json:/ServiceBus_Emulator/ConfigFiles/Config.json:ro");
    let config: Value = serde_json::from_str(&read("compose/servicebus/Config.json")).unwrap();
    let queues: Vec<&Value> = config["UserConfig"]["Namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|ns| ns["Queues"].as_array().unwrap())
        .collect();
    let functions = service(&compose, "functions");
    for setting_name in ["EVENTS_QUEUE", "DELIVERIES_QUEUE"] {
        let name = setting(functions, setting_name);
        let queue = queues.iter().find(|q| q["Name"] == name).unwrap_or_else(|| panic!("no queue {name}"));
        assert!(queue["Properties"]["MaxDeliveryCount"].as_u64().is_some_and(|n| n >= 1));
    }
    // Re-sent delivery jobs carry a MessageId per attempt, so that duplicate detection drops a re-send made twice.
    let deliveries = queues.iter().find(|q| q["Name"] == setting(functions, "DELIVERIES_QUEUE")).unwrap();
    assert_eq!(deliveries["Properties"]["RequiresDuplicateDetection"], true);
}

#[test]
fn the_test_agent_reaches_the_host_the_queue_and_is_reached_back() {
    let compose = compose();
    let (agent, functions) = (service(&compose, "testagent"), service(&compose, "functions"));
    let command: Vec<&str> = agent["command"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(command[..3], ["run", "--target", "functions"]);
    let run_help = help("testagent", "run");
    for flag in command.iter().filter(|c| c.starts_with("--")) {
        assert!(run_help.contains(&format!("{flag} ")), "testagent run has no {flag}");
    }
    // The API: the Api function's route (v1/...) under the host's route prefix (api), on the functions service.
    assert_eq!(command_option(agent, "--url"), Some("http://functions/api/v1"));
    let api: Value = serde_json::from_str(&read("function-app/Api/function.json")).unwrap();
    assert_eq!(api["bindings"][0]["route"], "v1/{*path}");
    let host: Value = serde_json::from_str(&read("function-app/host.json")).unwrap();
    assert_eq!(host["extensions"]["http"]["routePrefix"], "api");
    // The webhooks it registers point at its own service name, on every interface.
    assert_eq!(command_option(agent, "--advertise"), Some("testagent"));
    // Events go to the queue the host triggers on, on the same emulator.
    assert_eq!(setting(agent, "SERVICEBUS_CONNECTION"), setting(functions, "ServiceBusConnection"));
    assert!(run_help.contains("[env: SERVICEBUS_CONNECTION"));
    assert_eq!(command_option(agent, "--events-queue"), Some(setting(functions, "EVENTS_QUEUE")));
    // Its key is the operator's key the handler checks (the Api function is anonymous), and the host's function
    // key `operator`, as scripts/deploy-azure.sh makes it.
    assert_eq!(api["bindings"][0]["authLevel"], "anonymous");
    let key = setting(agent, "FUNCTIONS_KEY");
    assert_eq!(setting(functions, "DISPATCHER_API_KEY"), key);
    let secrets: Value = serde_json::from_str(&read("compose/functions/secrets/host.json")).unwrap();
    assert!(secrets["functionKeys"].as_array().unwrap().iter().any(|k| k["value"] == key && k["name"] == "operator"));
    assert!(run_help.contains("[env: FUNCTIONS_KEY"));
    assert_eq!(setting(functions, "FUNCTIONS_SECRETS_PATH"), "/etc/secrets");
}
