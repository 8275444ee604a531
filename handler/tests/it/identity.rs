//! Identity-based connections: `handler serve` with `COSMOSDB_ENDPOINT` and no key, and
//! `ServiceBusConnection__fullyQualifiedNamespace` in place of a connection string, takes Microsoft Entra tokens
//! from the App Service managed identity endpoint, and Cosmos DB and Service Bus take them in place of keys.
//!
//! The endpoint is a stand-in that answers as the documented one (App Service, "managed identity", REST
//! protocol: `GET {IDENTITY_ENDPOINT}?resource=<resource>&api-version=2019-08-01[&client_id=<id>]` with the
//! header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; a JSON answer with `access_token`, `expires_on` in Unix
//! seconds as a string, `resource`, `token_type`, `client_id`). The Cosmos DB server accepts only its token
//! (`COSMOS_ENTRA_TOKEN`), the broker only its token as a `jwt` put-token (`BROKER_JWT`).

use crate::functions_serve::start_ready;
use crate::support::cosmos::start_cosmos_server_with;
use crate::support::servicebus::start_servicebus_broker_with;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use testkit::free_port;

const IDENTITY_HEADER: &str = "c2VjcmV0LWlkZW50aXR5LWhlYWRlcg";
const CLIENT_ID: &str = "7d2f3c8e-1b4a-4f0e-9c61-2a5b8e9d0f13";
const COSMOS_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.cosmos-data-plane.c2lnbmF0dXJlLWNvc21vcw";
const SERVICE_BUS_TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.service-bus.c2lnbmF0dXJlLWJ1cw";

/// The requests the identity endpoint answered: (resource, client_id).
type Issued = Arc<Mutex<Vec<(String, String)>>>;

async fn token(
    State(issued): State<Issued>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let refuse = |status: StatusCode, message: &str| (status, Json(json!({"error": message})));
    if headers.get("x-identity-header").and_then(|h| h.to_str().ok()) != Some(IDENTITY_HEADER) {
        return refuse(StatusCode::UNAUTHORIZED, "X-IDENTITY-HEADER is missing or wrong");
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return refuse(StatusCode::BAD_REQUEST, "api-version must be 2019-08-01");
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    let access_token = match resource.as_str() {
        "https://cosmos.azure.com" => COSMOS_TOKEN,
        "https://servicebus.azure.net" => SERVICE_BUS_TOKEN,
        _ => return refuse(StatusCode::BAD_REQUEST, "unknown resource"),
    };
    let client_id = query.get("client_id").cloned().unwrap_or_default();
    issued.lock().unwrap().push((resource.clone(), client_id.clone()));
    let expires_on = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 86_400;
    let answer = json!({"access_token": access_token, "expires_on": expires_on.to_string(), "resource": resource,
                        "token_type": "Bearer", "client_id": client_id});
    (StatusCode::OK, Json(answer))
}

/// The identity endpoint, at `http://127.0.0.1:<port>/msi/token`.
async fn start_identity_endpoint() -> (String, Issued) {
    let issued = Issued::default();
    let app = axum::Router::new().route("/msi/token", axum::routing::get(token)).with_state(issued.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/msi/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, issued)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managed_identity_s_tokens_open_cosmos_db_and_service_bus_and_are_never_logged() {
    let (identity_endpoint, issued) = start_identity_endpoint().await;
    let cosmos = start_cosmos_server_with(&[("COSMOS_ENTRA_TOKEN", COSMOS_TOKEN)]);
    let broker = start_servicebus_broker_with(&[("BROKER_JWT", SERVICE_BUS_TOKEN)]);
    let log_file = crate::support::temp_dir("identity").with_extension("log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .env("COSMOSDB_ENDPOINT", &cosmos.endpoint)
        .env_remove("COSMOSDB_KEY")
        .env("COSMOSDB_DATABASE", "identity")
        .env("COSMOSDB_CREATE_IF_MISSING", "true")
        .env_remove("ServiceBusConnection")
        .env("ServiceBusConnection__fullyQualifiedNamespace", format!("127.0.0.1:{}", broker.port))
        .env("IDENTITY_ENDPOINT", &identity_endpoint)
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        // Everything the process and its crates log, so that a token in any of it is seen.
        .env("DISPATCHER_LOG", "trace")
        .stdout(Stdio::from(std::fs::File::create(&log_file).unwrap()))
        .stderr(Stdio::from(std::fs::File::options().append(true).open(&log_file).unwrap()));
    let (_handler, client, base) = start_ready(command, free_port()).await;

    // Cosmos DB: a webhook written and read back with the identity's token.
    let webhook = json!({"url": "https://one.example/hook", "subscriptions": ["ping"]});
    let created = client.post(format!("{base}/api/v1/webhooks")).json(&webhook).send().await.unwrap();
    let status = created.status().as_u16();
    let created: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let read: Value = client.get(format!("{base}/api/v1/webhooks/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(read["url"], "https://one.example/hook", "{read}");

    // Service Bus: an event sent to the events queue after a `jwt` put-token.
    let event = json!({"name": "ping:all", "payload": {}});
    let accepted = client.post(format!("{base}/api/v1/events")).json(&event).send().await.unwrap();
    assert_eq!(accepted.status().as_u16(), 202, "{}", accepted.text().await.unwrap());
    let put_token = broker.next();
    assert_eq!(put_token["accepted"], true, "{put_token}");
    assert_eq!(put_token["put_token"], format!("sb://127.0.0.1/events"));
    let message = broker.next_message();
    assert_eq!(message["queue"], "events", "{message}");

    // One token per resource, for the user-assigned identity named; the credential caches them.
    let issued = issued.lock().unwrap().clone();
    for resource in ["https://cosmos.azure.com", "https://servicebus.azure.net"] {
        assert_eq!(
            issued.iter().filter(|(r, client)| r == resource && client == CLIENT_ID).count(),
            1,
            "{resource}: {issued:?}"
        );
    }
    let logs = std::fs::read_to_string(&log_file).unwrap();
    assert!(logs.contains("custom handler ready"), "the log is the handler's: {logs}");
    for secret in [COSMOS_TOKEN, SERVICE_BUS_TOKEN, IDENTITY_HEADER] {
        let prefix = &secret[..secret.len().min(24)];
        assert!(!logs.contains(secret) && !logs.contains(&secret[24..]), "{prefix}… is in the logs");
    }
    let _ = std::fs::remove_file(&log_file);
}
