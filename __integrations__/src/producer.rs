//! The producer: publishes events through a dispatcher's HTTP API, or straight to a Service Bus queue as the
//! internal services do (`--service-bus <connection string>`): over REST to a namespace on Azure, over AMQP to the
//! Service Bus emulator, with the dispatcher's own sender (`dispatcher::functions::servicebus`).

use dispatcher::functions::servicebus::{MessageProperties, ServiceBusConnection, ServiceBusQueue};
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
    Queue(Box<ServiceBusQueue>),
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
        // A client of its own: the API client's default headers (a function key) are not for Service Bus.
        let rest = dispatcher::http_client::client()?;
        Ok(Producer::Queue(Box::new(ServiceBusQueue::connect(&connection, queue, rest, None)?)))
    }

    pub async fn publish(&self, event: &Value, correlation_id: Option<&str>) -> Result<Published, String> {
        match self {
            Producer::Api { url, client } => {
                let mut request = client.post(format!("{url}/events")).json(event);
                if let Some(id) = correlation_id {
                    request = request.header("x-correlation-id", id);
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
                let id = message_id();
                let properties = MessageProperties {
                    message_id: Some(id.clone()),
                    correlation_id: correlation_id.map(str::to_owned),
                    scheduled_at_ms: None,
                };
                queue.send(&event.to_string(), &properties).await?;
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
    let client = dispatcher::http_client::client().map_err(anyhow::Error::msg)?;
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
