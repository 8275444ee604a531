//! Sending messages to a Service Bus queue: delivery jobs re-sent for a later attempt (`ScheduledEnqueueTimeUtc`,
//! which the output binding cannot set), and events published through the HTTP API. To Azure through the REST
//! API (contract §7, with the `azure_messaging_servicebus` crate); to the emulator, which speaks only AMQP, with
//! the sender of `amqp.rs`.

use super::amqp::{AmqpSender, Outgoing};
use super::jobs::DeliveryJob;
use azure_messaging_servicebus::service_bus::{QueueClient, SendMessageOptions};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use servicebus_core::HttpClient;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The parts of a Service Bus connection string: `Endpoint=sb://<ns>.servicebus.windows.net/;
/// SharedAccessKeyName=<rule>;SharedAccessKey=<key>`, or the emulator's, which adds `UseDevelopmentEmulator=true`
/// to an `Endpoint=sb://<host>[:port]`. Its `Debug` does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceBusConnection {
    pub endpoint: Endpoint,
    pub policy: String,
    key: String,
}

/// Where the queues are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A namespace on Azure, reached through the REST API over HTTPS.
    Namespace(String),
    /// The Service Bus emulator, reached over AMQP without TLS (port 5672 unless the endpoint names one).
    Emulator { host: String, port: u16 },
}

impl std::fmt::Debug for ServiceBusConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceBusConnection({:?}, {}, key ***)", self.endpoint, self.policy)
    }
}

/// A SAS token for `uri` (contract §7): `sig` is the HMAC-SHA256 with the key's UTF-8 bytes of the URL-encoded
/// URI, a newline and the expiry in Unix seconds.
pub fn sas_token(uri: &str, policy: &str, key: &str, expiry: u64) -> String {
    let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let resource = encode(uri);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{resource}\n{expiry}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={}", encode(&signature), encode(policy))
}

impl ServiceBusConnection {
    /// Reads a connection string; the error names what is missing or wrong, never the key.
    pub fn parse(text: &str) -> Result<ServiceBusConnection, String> {
        let part = |name: &str| {
            text.split(';').find_map(|p| {
                p.trim().split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_owned())
            })
        };
        let endpoint = part("Endpoint").ok_or("no Endpoint=sb://<namespace>.servicebus.windows.net/")?;
        let host = endpoint.trim_start_matches("sb://").trim_end_matches('/');
        let emulator = part("UseDevelopmentEmulator").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = if emulator {
            emulator_endpoint(host).map_err(|e| format!("Endpoint {endpoint:?} of the emulator: {e}"))?
        } else {
            let namespace = host
                .strip_suffix(".servicebus.windows.net")
                .filter(|ns| !ns.is_empty() && !ns.contains('/'))
                .ok_or_else(|| format!("Endpoint {endpoint:?} is not sb://<namespace>.servicebus.windows.net/"))?;
            Endpoint::Namespace(namespace.to_owned())
        };
        let policy = part("SharedAccessKeyName").ok_or("no SharedAccessKeyName")?;
        let key = part("SharedAccessKey").filter(|k| !k.is_empty()).ok_or("no SharedAccessKey")?;
        Ok(ServiceBusConnection { endpoint, policy, key })
    }
}

fn emulator_endpoint(host: &str) -> Result<Endpoint, String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, port.parse().map_err(|_| format!("the port {port:?} is not a number"))?),
        None => (host, 5672),
    };
    if name.is_empty() || name.contains('/') {
        return Err("it is not sb://<host>[:port]".into());
    }
    Ok(Endpoint::Emulator { host: name.to_owned(), port })
}

/// One queue to send to.
pub struct ServiceBusQueue {
    transport: Transport,
    name: String,
}

enum Transport {
    Rest(QueueClient),
    Amqp(AmqpSender),
}

/// The `BrokerProperties` of a message sent (contract §7).
#[derive(Debug, Default)]
pub struct MessageProperties {
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    /// When it becomes visible, in milliseconds since the Unix epoch.
    pub scheduled_at_ms: Option<i64>,
}

impl MessageProperties {
    /// The JSON of the header. Written here rather than by the crate, which writes the time in RFC 2822
    /// (`+0000`) where Service Bus documents RFC 1123 (`GMT`).
    fn to_header(&self) -> String {
        let mut properties = serde_json::Map::new();
        let mut set = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                properties.insert(name.to_owned(), value.into());
            }
        };
        set("MessageId", self.message_id.clone());
        set("CorrelationId", self.correlation_id.clone());
        set(
            "ScheduledEnqueueTimeUtc",
            self.scheduled_at_ms
                .map(|ms| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))),
        );
        serde_json::Value::Object(properties).to_string()
    }
}

impl ServiceBusQueue {
    /// `http` sends the REST requests: a `reqwest::Client` in Azure, a [`RedirectedClient`] for a stand-in. The
    /// emulator's queues are reached over AMQP instead, on a connection opened at the first send.
    fn new(http: Arc<dyn HttpClient>, connection: &ServiceBusConnection, queue: &str) -> Result<Self, String> {
        let (policy, key) = (&connection.policy, &connection.key);
        let transport = match &connection.endpoint {
            Endpoint::Namespace(namespace) => Transport::Rest(
                QueueClient::new(http, namespace, queue, policy, key.clone())
                    .map_err(|e| format!("Service Bus queue {queue:?}: {e}"))?,
            ),
            Endpoint::Emulator { host, port } => Transport::Amqp(AmqpSender::new(host, *port, queue, policy, key)),
        };
        Ok(ServiceBusQueue { transport, name: queue.to_owned() })
    }

    /// The queue `queue` of `connection`, its REST requests sent with `client`: to the namespace, or to
    /// `rest_url` instead (a stand-in of Service Bus; the error names the setting that gave it).
    pub fn connect(
        connection: &ServiceBusConnection,
        queue: &str,
        client: reqwest::Client,
        rest_url: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        let http: Arc<dyn HttpClient> = match rest_url {
            Some((setting, base)) => {
                Arc::new(RedirectedClient::new(base, client).map_err(|e| format!("{setting}: {e}"))?)
            }
            None => Arc::new(client),
        };
        ServiceBusQueue::new(http, connection, queue)
    }

    /// Sends one JSON message.
    pub async fn send(&self, body: &str, properties: &MessageProperties) -> Result<(), String> {
        let sent = match &self.transport {
            Transport::Rest(client) => {
                let options = SendMessageOptions {
                    content_type: Some("application/json".into()),
                    broker_properties: None,
                    custom_properties: Some(HashMap::from([("BrokerProperties".to_owned(), properties.to_header())])),
                };
                client.send_message(body, Some(options)).await.map_err(|e| e.to_string())
            }
            Transport::Amqp(sender) => {
                let message = Outgoing {
                    message_id: properties.message_id.as_deref(),
                    correlation_id: properties.correlation_id.as_deref(),
                    content_type: "application/json",
                    scheduled_at_ms: properties.scheduled_at_ms,
                    body: body.as_bytes(),
                };
                sender.send(&message).await
            }
        };
        sent.map_err(|e| format!("sending to the Service Bus queue {:?} failed: {e}", self.name))
    }

    /// Sends a delivery job under `message_id`, visible at once or from `scheduled_at_ms`.
    pub async fn send_job(
        &self,
        job: &DeliveryJob,
        message_id: String,
        scheduled_at_ms: Option<i64>,
    ) -> Result<(), String> {
        let body = serde_json::to_string(job).map_err(|e| e.to_string())?;
        let properties = MessageProperties {
            message_id: Some(message_id),
            correlation_id: job.correlation_id.clone(),
            scheduled_at_ms,
        };
        self.send(&body, &properties).await
    }

    /// Sends `job` (carrying the attempts made so far) to be delivered at `at_ms`. Its `MessageId` names the
    /// attempt, so that duplicate detection drops a re-send made twice.
    pub async fn schedule(&self, job: &DeliveryJob, at_ms: i64) -> Result<(), String> {
        self.send_job(job, format!("{}-{}", job.delivery_id, job.attempts_made), Some(at_ms)).await
    }
}

/// Sends the requests meant for `https://<ns>.servicebus.windows.net` to another base URL instead, unchanged
/// otherwise (the signature still covers the namespace's URI): for tests and for stand-ins of Service Bus.
#[derive(Debug)]
struct RedirectedClient {
    base: url::Url,
    client: reqwest::Client,
}

impl RedirectedClient {
    fn new(base: &str, client: reqwest::Client) -> Result<RedirectedClient, String> {
        let base = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        if base.host_str().is_none() {
            return Err(format!("{base} has no host"));
        }
        Ok(RedirectedClient { base, client })
    }
}

#[async_trait::async_trait]
impl HttpClient for RedirectedClient {
    async fn execute_request(
        &self,
        request: &servicebus_core::Request,
    ) -> servicebus_core::Result<servicebus_core::Response> {
        let mut redirected = request.clone();
        let url = redirected.url_mut();
        // Both are http(s) URLs with a host, which is all these setters need to succeed.
        let _ = url.set_scheme(self.base.scheme());
        let _ = url.set_host(self.base.host_str());
        let _ = url.set_port(self.base.port());
        self.client.execute_request(&redirected).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_are_read_and_errors_never_show_the_key() {
        let connection = ServiceBusConnection::parse(
            "Endpoint=sb://acme-bus.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0",
        )
        .unwrap();
        assert_eq!(connection.endpoint, Endpoint::Namespace("acme-bus".into()));
        assert_eq!(connection.policy, "send");
        assert!(!format!("{connection:?}").contains("c2VjcmV0"));
        let error = ServiceBusConnection::parse("Endpoint=sb://localhost/;SharedAccessKeyName=a;SharedAccessKey=k3y")
            .unwrap_err();
        assert_eq!(error, "Endpoint \"sb://localhost/\" is not sb://<namespace>.servicebus.windows.net/");
        assert_eq!(
            ServiceBusConnection::parse("Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=a").unwrap_err(),
            "no SharedAccessKey"
        );
    }

    #[test]
    fn emulator_connection_strings_name_a_host_and_port() {
        let emulator = |endpoint: &str| {
            ServiceBusConnection::parse(&format!(
                "Endpoint={endpoint};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;\
                 UseDevelopmentEmulator=true;"
            ))
            .map(|c| c.endpoint)
        };
        assert_eq!(emulator("sb://localhost"), Ok(Endpoint::Emulator { host: "localhost".into(), port: 5672 }));
        assert_eq!(emulator("sb://servicebus:5673/"), Ok(Endpoint::Emulator { host: "servicebus".into(), port: 5673 }));
        assert_eq!(
            emulator("sb://localhost:amqp"),
            Err("Endpoint \"sb://localhost:amqp\" of the emulator: the port \"amqp\" is not a number".into())
        );
    }

    #[test]
    fn sas_tokens_sign_the_encoded_uri_and_expiry() {
        // The example of the Service Bus SAS documentation's algorithm, computed independently with openssl:
        // printf 'sb%3A%2F%2Fbus%2Fq\n1700000000' | openssl dgst -sha256 -hmac k3y -binary | base64
        let token = sas_token("sb://bus/q", "send", "k3y", 1_700_000_000);
        assert_eq!(token, "SharedAccessSignature sr=sb%3A%2F%2Fbus%2Fq&sig=VE0o%2FSaH878duTOO6fpmSz8sLPkg%2FRM55gjM%2FWXqfOE%3D&se=1700000000&skn=send");
    }

    #[test]
    fn broker_properties_carry_the_time_in_rfc_1123() {
        let properties = MessageProperties {
            message_id: Some("d-1".into()),
            correlation_id: None,
            scheduled_at_ms: Some(784_111_777_000),
        };
        assert_eq!(
            properties.to_header(),
            r#"{"MessageId":"d-1","ScheduledEnqueueTimeUtc":"Sun, 06 Nov 1994 08:49:37 GMT"}"#
        );
    }
}
