//! The Azure template (`infra/main.json`, the ARM form of `infra/main.bicep`) cannot be deployed from this
//! machine; this checks it against the code, as `compose.rs` checks the container stack: a plan that runs custom
//! handlers, every setting the bindings and the handler read (identity-based, no key), the queues and containers
//! as the code expects them, the identity's roles, and main.bicep in step with main.json.

use crate::compose::{bindings, help, queue_settings, read};
use dispatcher::adapters::cosmos::CONTAINERS;
use serde_json::Value;
use std::time::Duration;

fn template() -> Value {
    serde_json::from_str(&read("infra/main.json")).expect("infra/main.json is JSON")
}

fn resources<'a>(template: &'a Value, kind: &str) -> Vec<&'a Value> {
    template["resources"].as_array().unwrap().iter().filter(|r| r["type"] == kind).collect()
}

fn resource<'a>(template: &'a Value, kind: &str) -> &'a Value {
    match resources(template, kind).as_slice() {
        [one] => one,
        other => panic!("{} resources of type {kind}", other.len()),
    }
}

/// The app settings, name → value expression (they are built with `createObject('name', N, 'value', V)`, as
/// Bicep compiles an array that depends on a parameter).
fn app_settings(template: &Value) -> Vec<(String, String)> {
    let expression = resource(template, "Microsoft.Web/sites")["properties"]["siteConfig"]["appSettings"]
        .as_str()
        .expect("appSettings as an expression")
        .to_owned();
    expression
        .split("createObject('name', '")
        .skip(1)
        .map(|part| {
            let (name, rest) = part.split_once("', 'value', ").unwrap();
            (name.to_owned(), argument(rest).to_owned())
        })
        .collect()
}

/// The ARM expression argument `text` starts with: up to the first comma or closing parenthesis outside quotes
/// and parentheses.
fn argument(text: &str) -> &str {
    let (mut depth, mut quoted) = (0usize, false);
    for (at, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' | ',' if !quoted && depth == 0 => return &text[..at],
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    text
}

fn setting(settings: &[(String, String)], name: &str) -> String {
    settings.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("{name} is not set"))
}

/// `PT5M`, `PT30S`, `P14D`: the ISO 8601 durations Service Bus takes.
fn iso_duration(text: &str) -> Duration {
    let (days, time) = text.strip_prefix('P').unwrap().split_once('T').unwrap_or((text.strip_prefix('P').unwrap(), ""));
    let mut seconds = days.strip_suffix('D').map_or(0, |d| d.parse::<u64>().unwrap() * 86_400);
    let mut number = String::new();
    for c in time.chars() {
        match c {
            'H' | 'M' | 'S' => {
                let unit = match c {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                seconds += number.parse::<u64>().unwrap() * unit;
                number.clear();
            }
            digit => number.push(digit),
        }
    }
    Duration::from_secs(seconds)
}

#[test]
fn flex_consumption_is_the_default_plan_and_every_plan_runs_the_custom_runtime_on_linux() {
    let template = template();
    let choice = &template["parameters"]["hostingPlan"];
    assert_eq!(choice["defaultValue"], "FlexConsumption");
    let plans = &template["variables"]["plans"];
    let skus: Vec<&str> = choice["allowedValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| plans[p.as_str().unwrap()]["sku"]["name"].as_str().unwrap())
        .collect();
    // Linux Consumption (Y1) is left out: Core Tools publish there with a storage key, and it retires in 2028.
    assert_eq!(skus, ["FC1", "EP1", "P1v3"]);
    let plan = resource(&template, "Microsoft.Web/serverfarms");
    assert_eq!(plan["properties"]["reserved"], true, "a Linux plan");
    let app = resource(&template, "Microsoft.Web/sites");
    assert_eq!(app["kind"], "functionapp,linux");
    assert_eq!(app["identity"]["type"], "SystemAssigned");

    // On Flex, the runtime and the package's container (reached with the identity, no key) are the app's
    // functionAppConfig, and the runtime app settings, which Flex refuses, are left out.
    assert_eq!(
        app["properties"]["functionAppConfig"],
        "[if(variables('flex'), variables('functionAppConfig'), null())]"
    );
    let config = &template["variables"]["functionAppConfig"];
    assert_eq!(config["runtime"], serde_json::json!({"name": "custom", "version": "1.0"}));
    let storage = &config["deployment"]["storage"];
    assert_eq!(
        (&storage["type"], &storage["authentication"]["type"]),
        (&"blobContainer".into(), &"SystemAssignedIdentity".into())
    );
    assert!(storage["value"].as_str().unwrap().contains("variables('deploymentContainer')"));
    let container = resource(&template, "Microsoft.Storage/storageAccounts/blobServices/containers");
    assert_eq!(container["condition"], "[variables('flex')]");
    let settings = app["properties"]["siteConfig"]["appSettings"].as_str().unwrap();
    assert!(settings.starts_with("[concat(if(variables('flex'), createArray(), createArray(createObject('name', 'FUNCTIONS_EXTENSION_VERSION', 'value', '~4'), createObject('name', 'FUNCTIONS_WORKER_RUNTIME', 'value', 'custom')))"), "{settings}");
    assert!(settings.contains("if(not(equals(parameters('hostingPlan'), 'ElasticPremium')), createArray(), createArray(createObject('name', 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING'"), "only Elastic Premium keeps a content share");
    let roles = template["variables"]["hostStorageRoles"].as_array().unwrap();
    assert!(
        roles.contains(&template["variables"]["roles"]["storageBlobDataOwner"]),
        "the identity writes the package container"
    );
    // Publishing takes an Entra token: the app's basic-auth publishing credentials are off, for Kudu and FTP.
    let policies = resource(&template, "Microsoft.Web/sites/basicPublishingCredentialsPolicies");
    assert_eq!(
        (&policies["properties"]["allow"], &policies["copy"]["count"]),
        (&false.into(), &"[length(createArray('scm', 'ftp'))]".into())
    );
    // Properties Flex Consumption refuses are left out there (null), kept on the other plans.
    assert_eq!(app["properties"]["reserved"], "[if(variables('flex'), null(), true())]");
    for (name, other_plans) in
        [("alwaysOn", "equals(parameters('hostingPlan'), 'Dedicated')"), ("ftpsState", "'Disabled'")]
    {
        assert_eq!(
            app["properties"]["siteConfig"][name],
            format!("[if(variables('flex'), null(), {other_plans})]"),
            "{name}"
        );
    }
}

#[test]
fn the_function_app_gets_every_setting_its_bindings_and_the_handler_read_with_identities_not_keys() {
    let template = template();
    let settings = app_settings(&template);
    let names: Vec<&str> = settings.iter().map(|(n, _)| n.as_str()).collect();
    for (path, binding) in bindings() {
        if let Some(connection) = binding["connection"].as_str() {
            let identity = format!("{connection}__fullyQualifiedNamespace");
            assert!(names.contains(&identity.as_str()), "{}: {identity} is not set", path.display());
            assert!(!names.contains(&connection), "{}: {connection} holds a key", path.display());
        }
        for name in queue_settings(&binding) {
            assert!(names.contains(&name.as_str()), "{}: %{name}% is not set", path.display());
        }
    }
    assert!(!names.contains(&"COSMOSDB_KEY"), "Cosmos DB is reached with the identity");
    assert!(names.contains(&"AzureWebJobsStorage__accountName") && !names.contains(&"AzureWebJobsStorage"));
    // The data-plane roles cannot create databases: the template does.
    assert_eq!(setting(&settings, "COSMOSDB_CREATE_IF_MISSING"), "'false'");
    assert_eq!(setting(&settings, "DISPATCHER_ALLOW_PRIVATE_TARGETS"), "'false'");
    // Every other setting is one the handler reads (a typo would be ignored silently at run time).
    let handler_help = help("handler", "serve");
    let platform = ["FUNCTIONS_", "AzureWebJobs", "APPLICATIONINSIGHTS_", "WEBSITE_"];
    for name in names.iter().filter(|n| !platform.iter().any(|p| n.starts_with(p))) {
        let known = handler_help.contains(&format!("[env: {name}")) || handler_help.contains(&format!("{name}="));
        assert!(known, "the handler reads no setting {name}");
    }
    // The retention the handler reads is the containers' TTL.
    assert_eq!(setting(&settings, "DISPATCHER_RETENTION_DAYS"), "string(parameters('retentionDays'))");
    assert_eq!(template["variables"]["retentionSeconds"], "[mul(parameters('retentionDays'), 86400)]");
}

#[test]
fn the_queues_are_the_ones_the_functions_use_with_the_settings_the_code_relies_on() {
    let template = template();
    let settings = app_settings(&template);
    let queues = resources(&template, "Microsoft.ServiceBus/namespaces/queues");
    let namespace = resource(&template, "Microsoft.ServiceBus/namespaces");
    assert_eq!(namespace["sku"]["name"], "Standard", "scheduled messages and duplicate detection need Standard");
    assert_eq!(namespace["properties"]["disableLocalAuth"], true, "no SAS keys");
    let request_timeout =
        humantime::parse_duration(setting(&settings, "DISPATCHER_REQUEST_TIMEOUT").trim_matches('\'')).unwrap();
    for (setting_name, variable) in [("EVENTS_QUEUE", "eventsQueue"), ("DELIVERIES_QUEUE", "deliveriesQueue")] {
        assert_eq!(setting(&settings, setting_name), format!("variables('{variable}')"));
        let name = format!("[format('{{0}}/{{1}}', variables('serviceBusName'), variables('{variable}'))]");
        let queue = queues.iter().find(|q| q["name"] == name).unwrap_or_else(|| panic!("no queue {variable}"));
        let properties = &queue["properties"];
        assert!(properties["maxDeliveryCount"].as_u64().is_some_and(|n| n >= 1));
        // Duplicate detection drops a retry re-sent twice, and an event published twice under one key.
        assert_eq!(properties["requiresDuplicateDetection"], true, "{variable}");
        assert_eq!(properties["deadLetteringOnMessageExpiration"], true, "{variable}");
        // A job's lock outlasts an attempt and its failure callback.
        let lock = iso_duration(properties["lockDuration"].as_str().unwrap());
        assert!(lock >= 2 * request_timeout, "{variable}: lock {lock:?}");
        // A job waits for its last retry (the schedule's sum, about 47 hours) in the queue.
        assert!(
            iso_duration(properties["defaultMessageTimeToLive"].as_str().unwrap()) >= Duration::from_secs(3 * 86_400)
        );
    }
    assert_eq!(template["variables"]["eventsQueue"], "events");
    assert_eq!(template["variables"]["deliveriesQueue"], "deliveries");
}

#[test]
fn the_containers_are_the_ones_the_store_creates() {
    let template = template();
    let containers = resources(&template, "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers");
    assert_eq!(containers.len(), CONTAINERS.len());
    for spec in &CONTAINERS {
        let container = containers
            .iter()
            .map(|c| &c["properties"]["resource"])
            .find(|c| c["id"] == spec.name)
            .unwrap_or_else(|| panic!("no container {}", spec.name));
        assert_eq!(container["partitionKey"]["paths"], serde_json::json!([spec.partition_key]), "{}", spec.name);
        let ttl = &container["defaultTtl"];
        match spec.expires {
            true => assert_eq!(ttl, "[variables('retentionSeconds')]", "{}", spec.name),
            false => assert!(ttl.is_null(), "{}: items never expire", spec.name),
        }
        let composite = &container["indexingPolicy"]["compositeIndexes"];
        match spec.newest_first_by {
            Some(time) => assert_eq!(
                composite,
                &serde_json::json!([[{"path": time, "order": "descending"}, {"path": "/id", "order": "descending"}]]),
                "{}",
                spec.name
            ),
            None => assert!(composite.is_null(), "{}", spec.name),
        }
    }
    let account = resource(&template, "Microsoft.DocumentDB/databaseAccounts");
    assert_eq!(account["properties"]["disableLocalAuth"], true, "no account keys");
    assert_eq!(template["variables"]["database"], "dispatcher");
}

#[test]
fn the_identity_may_receive_and_send_on_service_bus_and_read_and_write_cosmos_db() {
    let template = template();
    let roles = &template["variables"]["roles"];
    // Azure's built-in role ids.
    // Data Owner, not Receiver: target-based scaling reads the queues' runtime properties (Manage).
    assert_eq!(roles["serviceBusDataOwner"], "090c5cfd-751d-490a-894a-3ce6f1109419");
    assert_eq!(roles["serviceBusDataSender"], "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39");
    assert_eq!(roles["cosmosDataContributor"], "00000000-0000-0000-0000-000000000002");
    let identity =
        "reference(resourceId('Microsoft.Web/sites', variables('appName')), '2025-05-01', 'full').identity.principalId";
    let assignments = resources(&template, "Microsoft.Authorization/roleAssignments");
    for role in ["serviceBusDataOwner", "serviceBusDataSender"] {
        let assignment = assignments
            .iter()
            .find(|a| {
                a["properties"]["roleDefinitionId"].as_str().unwrap().contains(&format!("variables('roles').{role}"))
            })
            .unwrap_or_else(|| panic!("{role} is not assigned"));
        assert_eq!(assignment["scope"], "[format('Microsoft.ServiceBus/namespaces/{0}', variables('serviceBusName'))]");
        assert_eq!(assignment["properties"]["principalId"], format!("[{identity}]"));
    }
    let cosmos = resource(&template, "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments");
    assert!(cosmos["properties"]["roleDefinitionId"]
        .as_str()
        .unwrap()
        .contains("variables('roles').cosmosDataContributor"));
    assert_eq!(cosmos["properties"]["principalId"], format!("[{identity}]"));
}

#[test]
fn main_bicep_declares_what_main_json_does() {
    let template = template();
    let bicep = read("infra/main.bicep");
    for resource in template["resources"].as_array().unwrap() {
        let declared = format!("'{}@{}'", resource["type"].as_str().unwrap(), resource["apiVersion"].as_str().unwrap());
        assert!(bicep.contains(&declared), "main.bicep has no {declared}");
    }
    for (name, _) in app_settings(&template) {
        assert!(bicep.contains(&format!("name: '{name}'")), "main.bicep does not set {name}");
    }
    for (_, id) in template["variables"]["roles"].as_object().unwrap() {
        assert!(bicep.contains(id.as_str().unwrap()), "main.bicep has no role {id}");
    }
    for spec in &CONTAINERS {
        assert!(
            bicep.contains(&format!("id: '{}'", spec.name))
                && bicep.contains(&format!("paths: [ '{}' ]", spec.partition_key))
        );
    }
    for (name, parameter) in template["parameters"].as_object().unwrap() {
        assert!(bicep.contains(&format!("param {name} ")), "main.bicep has no parameter {name}");
        if let Some(default) = parameter["defaultValue"].as_str().filter(|d| !d.starts_with('[')) {
            assert!(bicep.contains(&format!("param {name} string = '{default}'")), "{name}'s default");
        }
    }
}

/// Runs the Azure SDK model check (`__integrations__/azure-models/check.py`) on `template`: whether it passed,
/// and its report.
fn sdk_model_check(template: &std::path::Path) -> (bool, String) {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("azure-models-venv");
    let python = testkit::python::venv(&venv, "azure-models/requirements.txt", "azure.mgmt.web, azure.mgmt.servicebus");
    let script = testkit::integrations().join("azure-models/check.py");
    let output = std::process::Command::new(python).arg(script).arg(template).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), report)
}

#[test]
fn every_resource_uses_only_properties_the_azure_sdk_models_for_its_api_version() {
    let (passed, report) = sdk_model_check(&testkit::integrations().join("../infra/main.json"));
    assert!(passed, "{report}");
    assert!(report
        .contains(&format!("{} resources checked, 0 problems", template()["resources"].as_array().unwrap().len())));

    // A property an API version does not have, as the Service Bus namespace once had, is named with its path.
    let mut seeded = template();
    let namespace = seeded["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["type"] == "Microsoft.ServiceBus/namespaces")
        .unwrap();
    namespace["properties"]["minimumTlsVersio"] = "1.2".into();
    let path = testkit::temp_dir("azure-models").join("seeded.json");
    std::fs::write(&path, seeded.to_string()).unwrap();
    let (passed, report) = sdk_model_check(&path);
    assert!(!passed, "{report}");
    assert!(
        report.contains("Microsoft.ServiceBus/namespaces@2026-01-01.properties.minimumTlsVersio: not a property"),
        "{report}"
    );

    // A template on an API version the pinned models do not describe is refused, not checked against others.
    let mut older = template();
    older["resources"].as_array_mut().unwrap().iter_mut().find(|r| r["type"] == "Microsoft.Web/sites").unwrap()
        ["apiVersion"] = "2021-02-01".into();
    std::fs::write(&path, older.to_string()).unwrap();
    let (passed, report) = sdk_model_check(&path);
    assert!(
        !passed
            && report
                .contains("Microsoft.Web/sites@2021-02-01: the installed azure.mgmt.web models API version 2025-05-01"),
        "{report}"
    );
}

#[test]
fn the_encryption_key_is_a_key_vault_reference_the_identity_may_read_and_the_deployer_write() {
    let template = template();
    let vault = resource(&template, "Microsoft.KeyVault/vaults");
    assert_eq!(vault["properties"]["enableRbacAuthorization"], true);
    let settings = app_settings(&template);
    assert_eq!(
        setting(&settings, "DISPATCHER_ENCRYPTION_KEY"),
        "format('@Microsoft.KeyVault(VaultName={0};SecretName={1})', variables('vaultName'), variables('encryptionKeySecret'))"
    );
    // The operator's key too: the Api function is anonymous, and the handler checks it (docs/azure-functions.md).
    assert_eq!(
        setting(&settings, "DISPATCHER_API_KEY"),
        "format('@Microsoft.KeyVault(VaultName={0};SecretName={1})', variables('vaultName'), variables('operatorKeySecret'))"
    );
    let roles = &template["variables"]["roles"];
    let on_vault: Vec<&Value> = resources(&template, "Microsoft.Authorization/roleAssignments")
        .into_iter()
        .filter(|r| r["scope"].as_str().is_some_and(|s| s.contains("Microsoft.KeyVault/vaults")))
        .collect();
    let role = |assignment: &Value| {
        let id = assignment["properties"]["roleDefinitionId"].as_str().unwrap().to_owned();
        ["keyVaultSecretsUser", "keyVaultSecretsOfficer"]
            .into_iter()
            .find(|r| id.contains(&format!("variables('roles').{r}")))
            .unwrap()
    };
    let reader = on_vault.iter().find(|a| role(a) == "keyVaultSecretsUser").expect("the app reads the vault");
    assert!(reader["properties"]["principalId"].as_str().unwrap().contains("Microsoft.Web/sites"));
    let writer = on_vault.iter().find(|a| role(a) == "keyVaultSecretsOfficer").expect("the deployer writes it");
    assert_eq!(writer["condition"], "[not(empty(parameters('deployerObjectId')))]");
    assert_eq!(roles["keyVaultSecretsUser"], "4633458b-17de-408a-b874-0445c86b69e6");
}

#[test]
fn a_fixed_outbound_address_and_the_alerts_are_there_when_asked_for() {
    let template = template();
    for kind in
        ["Microsoft.Network/publicIPAddresses", "Microsoft.Network/natGateways", "Microsoft.Network/virtualNetworks"]
    {
        assert_eq!(resource(&template, kind)["condition"], "[parameters('outboundIp')]", "{kind}");
    }
    let subnet = &resource(&template, "Microsoft.Network/virtualNetworks")["properties"]["subnets"][0]["properties"];
    assert!(subnet["natGateway"]["id"].as_str().unwrap().contains("Microsoft.Network/natGateways"));
    assert_eq!(
        subnet["delegations"][0]["properties"]["serviceName"],
        "[if(variables('flex'), 'Microsoft.App/environments', 'Microsoft.Web/serverFarms')]"
    );
    let app = resource(&template, "Microsoft.Web/sites");
    assert!(app["properties"]["virtualNetworkSubnetId"].as_str().unwrap().starts_with("[if(parameters('outboundIp')"));
    assert_eq!(
        app["properties"]["siteConfig"]["vnetRouteAllEnabled"], "[parameters('outboundIp')]",
        "all traffic through the NAT"
    );
    assert!(template["outputs"]["outboundIpAddress"]["value"].as_str().unwrap().contains("publicIPAddresses"));

    assert_eq!(resource(&template, "Microsoft.Insights/actionGroups")["condition"], "[variables('alerts')]");
    let alerts: Vec<(&str, &str)> = template["variables"]["metricAlerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["namespace"].as_str().unwrap(), a["metric"].as_str().unwrap()))
        .collect();
    assert_eq!(
        alerts,
        [
            ("Microsoft.ServiceBus/namespaces", "DeadletteredMessages"),
            ("Microsoft.ServiceBus/namespaces", "ActiveMessages"),
            ("microsoft.insights/components", "requests/failed"),
            ("Microsoft.DocumentDB/databaseAccounts", "TotalRequests"),
        ]
    );
    let dead_lettered = &template["variables"]["metricAlerts"][0]["dimensions"][0]["values"];
    assert_eq!(
        dead_lettered,
        &serde_json::json!(["[variables('eventsQueue')]", "[variables('deliveriesQueue')]"]),
        "both queues"
    );
}
