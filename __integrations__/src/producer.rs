//! The producer: publishes events through a dispatcher's HTTP API, or straight to a Service Bus queue as the
//! internal services do (`--service-bus <connection string>`), over AMQP to a namespace on Azure or to the
//! emulator, with the dispatcher's own sender (`dispatcher::adapters::servicebus`).

use dispatcher::adapters::servicebus::{Outgoing, QueueSender, ServiceBusConnection};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The API base URL of the dispatcher to publish to (e.g. http://127.0.0.1:7071/api/v1).
    #[arg(long, conflicts_with = "service_bus", required_unless_present = "service_bus")]
    pub url: Option<String>,
    /// Publish to the Service Bus queue of this connection string instead (Azure, or the emulator's with
    /// `UseDevelopmentEmulator=true`).
    #[arg(long, env = "SERVICEBUS_CONNECTION", hide_env_values = true)]
    pub service_bus: Option<String>,
    /// The function key (or the local API key) sent as `x-functions-key`, with `--url`: an Azure deployment's
    /// API takes no call without it.
    #[arg(long, env = "TESTAGENT_FUNCTIONS_KEY", hide_env_values = true, conflicts_with = "service_bus")]
    pub functions_key: Option<String>,
    /// The queue the events go to, with `--service-bus`.
    #[arg(long, default_value = "events")]
    pub queue: String,
    /// Sent as the x-correlation-id header, or as the message's CorrelationId.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The events, each a JSON document such as {"name":"ping","payload":{}}.
    #[arg(required = true)]
    pub events: Vec<String>,
}

/// Where events go.
pub enum Producer {
    Api { url: String, client: reqwest::Client },
    Queue(Box<QueueSender>),
}

/// What publishing one event gave.
pub struct Published {
    /// The event's id: the API's answer, or the MessageId sent.
    pub id: String,
    /// The API's answer (Null for a queue).
    pub answer: Value,
}

impl Producer {
    /// To `queue` of the namespace or emulator that `service_bus` names when given (the error never shows the
    /// key), else through the API at `url` with `client`.
    pub fn new(service_bus: Option<&str>, queue: &str, url: &str, client: reqwest::Client) -> Result<Producer, String> {
        let Some(connection) = service_bus else {
            return Ok(Producer::Api { url: url.trim_end_matches('/').to_owned(), client });
        };
        let connection = ServiceBusConnection::parse(connection).map_err(|e| format!("--service-bus: {e}"))?;
        Ok(Producer::Queue(Box::new(QueueSender::new(&connection, queue))))
    }

    pub async fn publish(&self, event: &Value, correlation_id: Option<&str>) -> Result<Published, String> {
        self.publish_as(event, correlation_id, None).await
    }

    /// Publishes under `key` when given: the API's `Idempotency-Key`, or the message's id on a queue (the source
    /// of the delivery ids either way); a new one otherwise.
    pub async fn publish_as(
        &self,
        event: &Value,
        correlation_id: Option<&str>,
        key: Option<&str>,
    ) -> Result<Published, String> {
        match self {
            Producer::Api { url, client } => {
                let mut request = client.post(format!("{url}/events")).json(event);
                if let Some(id) = correlation_id {
                    request = request.header("x-correlation-id", id);
                }
                if let Some(key) = key {
                    request = request.header("idempotency-key", key);
                }
                let response = request.send().await.map_err(|e| format!("POST {url}/events: {e}"))?;
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                if status != 202 {
                    return Err(format!("publishing {event}: {status} {answer}"));
                }
                Ok(Published { id: answer["id"].as_str().unwrap_or_default().to_owned(), answer })
            }
            Producer::Queue(queue) => {
                let id = key.map_or_else(message_id, str::to_owned);
                let body = event.to_string();
                let message = Outgoing {
                    message_id: &id,
                    correlation_id,
                    scheduled_at_ms: None,
                    traceparent: None,
                    body: &body,
                    retry: None,
                };
                queue.send(message).await.map_err(|e| e.to_string())?;
                Ok(Published { id, answer: Value::Null })
            }
        }
    }
}

/// A MessageId no other run makes: the dispatcher derives its delivery ids from it.
fn message_id() -> String {
    static SENT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("testagent-{}-{nanos:x}-{}", std::process::id(), SENT.fetch_add(1, Ordering::Relaxed))
}

/// `testagent publish`: one line per event, `published <id>`; false when one failed.
pub async fn publish(args: PublishArgs) -> anyhow::Result<bool> {
    // clap requires --url unless --service-bus is given.
    let url = args.url.as_deref().unwrap_or_default();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = &args.functions_key {
        let mut value = reqwest::header::HeaderValue::from_str(key)
            .map_err(|_| anyhow::anyhow!("--functions-key: not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert("x-functions-key", value);
    }
    let builder = dispatcher::adapters::tls::builder().default_headers(headers);
    let client = dispatcher::adapters::tls::build(builder).map_err(anyhow::Error::msg)?;
    let producer = Producer::new(args.service_bus.as_deref(), &args.queue, url, client).map_err(anyhow::Error::msg)?;
    let mut all = true;
    for text in &args.events {
        let outcome = match serde_json::from_str::<Value>(text) {
            Ok(event) => producer.publish(&event, args.correlation_id.as_deref()).await,
            Err(e) => Err(format!("{text:?} is not JSON: {e}")),
        };
        match outcome {
            Ok(published) => println!("published {}", published.id),
            Err(error) => {
                all = false;
                println!("FAILED {error}");
            }
        }
    }
    Ok(all)
}
