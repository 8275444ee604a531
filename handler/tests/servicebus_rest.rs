//! The Service Bus REST sender against a local HTTP endpoint standing in for `https://<ns>.servicebus.windows.net`,
//! checked against the documented contract (../shared/reference/azure-functions-custom-handler.md §7):
//! `POST /{queue}/messages`, `Authorization: SharedAccessSignature sr=..&sig=..&se=..&skn=..` whose signature
//! verifies with the key, and `BrokerProperties` with `MessageId` and `ScheduledEnqueueTimeUtc` in RFC 1123.

#[path = "support/job.rs"]
mod fixture;
use dispatcher::functions::jobs::DeliveryJob;
use fixture::job;

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use dispatcher::functions::servicebus::{ServiceBusConnection, ServiceBusQueue};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const KEY: &str = "bG9jYWwtdGVzdC1rZXktbm90LWEtcmVhbC1vbmU=";

#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

/// Records every request and answers with `status` and `answer`.
async fn endpoint(status: StatusCode, answer: &'static str) -> (String, Arc<Mutex<Vec<Received>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
            (status, answer)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

fn queue(base: &str, name: &str) -> ServiceBusQueue {
    let connection = ServiceBusConnection::parse(&format!(
        "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=dispatcher-send;SharedAccessKey={KEY}"
    ))
    .unwrap();
    ServiceBusQueue::connect(
        &connection,
        name,
        dispatcher::http_client::client().unwrap(),
        Some(("the stand-in's URL", base)),
    )
    .unwrap()
}

/// The fields of `SharedAccessSignature a=1&b=2`, URL-decoded.
fn sas_fields(authorization: &str) -> HashMap<String, String> {
    let token = authorization.strip_prefix("SharedAccessSignature ").expect("a SharedAccessSignature");
    url::form_urlencoded::parse(token.as_bytes()).into_owned().collect()
}

#[tokio::test]
async fn a_scheduled_resend_follows_the_rest_contract() {
    let (base, received) = endpoint(StatusCode::CREATED, "").await;
    let at_ms = 1_900_000_000_000 + 250; // 2030-03-17T17:46:40.250Z
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    queue(&base, "deliveries").schedule(&job(), at_ms).await.unwrap();

    let requests = received.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/deliveries/messages");
    assert_eq!(request.headers["content-type"], "application/json");
    let sent: DeliveryJob = serde_json::from_str(&request.body).unwrap();
    assert_eq!(sent, job(), "the job itself, with the attempts made so far");

    let sas = sas_fields(request.headers["authorization"].to_str().unwrap());
    let uri = "https://acme-bus.servicebus.windows.net/deliveries/messages";
    assert_eq!(sas["sr"], uri, "the token is for the queue's URI");
    assert_eq!(sas["skn"], "dispatcher-send");
    let expiry: i64 = sas["se"].parse().unwrap();
    assert!((now + 60..=now + 7200).contains(&expiry), "expires in the future: {expiry} vs {now}");
    // An independent check of the signature: HMAC-SHA256 with the key's UTF-8 bytes over urlenc(uri) + "\n" + se.
    let encoded_uri: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(format!("{encoded_uri}\n{expiry}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(sas["sig"], expected, "the signature verifies with the key");

    let properties: Value = serde_json::from_str(request.headers["brokerproperties"].to_str().unwrap()).unwrap();
    assert_eq!(properties["MessageId"], format!("{}-2", job().delivery_id), "one message id per attempt");
    assert_eq!(properties["CorrelationId"], "corr-7");
    let scheduled = properties["ScheduledEnqueueTimeUtc"].as_str().unwrap();
    assert_eq!(scheduled, "Sun, 17 Mar 2030 17:46:40 GMT", "RFC 1123, in GMT");
    assert_eq!(httpdate::parse_http_date(scheduled).unwrap(), UNIX_EPOCH + Duration::from_secs(1_900_000_000));
}

#[tokio::test]
async fn a_refused_send_is_an_error_naming_the_queue_and_never_the_key() {
    // Service Bus's own answer to a bad signature.
    let refusal =
        "<Error><Code>401</Code><Detail>InvalidSignature: The token has an invalid signature.</Detail></Error>";
    let (base, _) = endpoint(StatusCode::UNAUTHORIZED, refusal).await;
    let error = queue(&base, "deliveries").schedule(&job(), 0).await.unwrap_err();
    assert!(error.starts_with("sending to the Service Bus queue \"deliveries\" failed"), "{error}");
    assert!(error.contains("401 Unauthorized") && error.contains("InvalidSignature"), "the status and why: {error}");
    assert!(!error.contains(KEY), "{error}");

    let unreachable = queue("http://127.0.0.1:9", "events");
    let error = unreachable.schedule(&job(), 0).await.unwrap_err();
    assert!(error.contains("\"events\"") && error.contains("Connection refused"), "{error}");
}
