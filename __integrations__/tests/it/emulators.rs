//! The Functions target against the real thing: the Service Bus emulator (with the SQL Edge it keeps its state
//! in, configured by `compose/servicebus/Config.json`) and the Cosmos DB emulator, started in containers; then
//! every scenario of `testagent run --target functions` through the real adapters: the handler sends over AMQP
//! to the emulator, the Functions-host stand-in receives from it, and Cosmos DB is the emulator's.
//!
//! Behind the `testcontainers` feature: CI compiles it (`cargo check --features testcontainers --all-targets`);
//! it runs where a Docker engine is (`cargo test -p testagent --features testcontainers`).

use dispatcher::adapters::cosmos::{CosmosAuth, CosmosConfig, CosmosStore};
use dispatcher::ports::WebhookStore;
use std::process::Command;
use std::time::{Duration, Instant};
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

const COSMOS_KEY: &str = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==";

/// Waits for the Cosmos DB emulator to serve requests: it answers 503 for a while after it listens.
async fn cosmos_ready(endpoint: &str) {
    let store = CosmosStore::new(CosmosConfig {
        endpoint: endpoint.to_owned(),
        auth: CosmosAuth::Key(COSMOS_KEY.into()),
        database: "readiness".into(),
        create_if_missing: true,
        retention_days: 1,
    });
    let started = Instant::now();
    while let Err(error) = store.list_webhooks().await {
        assert!(started.elapsed() < Duration::from_secs(180), "the Cosmos DB emulator never served: {error}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_against_the_service_bus_and_cosmos_db_emulators() {
    let id = std::process::id();
    let network = format!("dispatcher-emulators-{id}");
    let (sql_name, password) = (format!("sqledge-{id}"), "Dispatcher-Emulators-1");
    let _sql = GenericImage::new("mcr.microsoft.com/azure-sql-edge", "latest")
        .with_network(&network)
        .with_container_name(&sql_name)
        .with_env_var("ACCEPT_EULA", "Y")
        .with_env_var("MSSQL_SA_PASSWORD", password)
        .start()
        .await
        .expect("SQL Edge starts (is a Docker engine running?)");
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/servicebus/Config.json");
    let servicebus = GenericImage::new("mcr.microsoft.com/azure-messaging/servicebus-emulator", "latest")
        .with_exposed_port(5672.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Emulator Service is Successfully Up!"))
        .with_network(&network)
        .with_env_var("SQL_SERVER", &sql_name)
        .with_env_var("MSSQL_SA_PASSWORD", password)
        .with_env_var("ACCEPT_EULA", "Y")
        .with_mount(Mount::bind_mount(config.to_string_lossy(), "/ServiceBus_Emulator/ConfigFiles/Config.json"))
        .with_startup_timeout(Duration::from_secs(300))
        .start()
        .await
        .expect("the Service Bus emulator starts");
    // The Cosmos DB emulator advertises its own port in its account document: the same on the host.
    let _cosmos = GenericImage::new("mcr.microsoft.com/cosmosdb/linux/azure-cosmos-emulator", "vnext-preview")
        .with_exposed_port(8081.tcp())
        .with_mapped_port(8081, 8081.tcp())
        .with_env_var("PROTOCOL", "http")
        .start()
        .await
        .expect("the Cosmos DB emulator starts");
    let endpoint = "http://127.0.0.1:8081/".to_owned();
    cosmos_ready(&endpoint).await;
    let port = servicebus.get_host_port_ipv4(5672).await.unwrap();
    let connection = format!(
        "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;\
         UseDevelopmentEmulator=true;"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_testagent"))
        .args(["run", "--target", "functions", "--cosmos-endpoint", &endpoint, "--service-bus-emulator", &connection])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().last().is_some_and(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
}
