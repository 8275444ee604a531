//! Sending messages to a Service Bus queue: delivery jobs re-sent for a later attempt (`ScheduledEnqueueTimeUtc`,
//! which the output binding cannot set), and events published through the HTTP API. To Azure through the REST
//! API (contract §7); to the emulator, which speaks only AMQP, with the sender of `amqp.rs`.

use super::amqp::{AmqpSender, Outgoing};
use super::jobs::DeliveryJob;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    Rest(RestQueue),
    Amqp(AmqpSender),
}

/// A queue of a namespace on Azure, sent to with `POST https://<ns>.servicebus.windows.net/<queue>/messages`.
struct RestQueue {
    client: reqwest::Client,
    /// Where the messages are posted: the namespace's URL, or a stand-in's.
    url: url::Url,
    /// What the SAS token is for: always the namespace's URL, which is what Service Bus checks.
    resource: String,
    policy: String,
    key: String,
}

/// How long a SAS token of a REST request stays valid: longer than any retry of the request.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl RestQueue {
    /// Posts one message; Service Bus answers 201 Created.
    async fn send(&self, body: &str, content_type: &str, properties: &MessageProperties) -> Result<(), String> {
        let expiry = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + TOKEN_LIFETIME;
        let token = sas_token(&self.resource, &self.policy, &self.key, expiry.as_secs());
        let response = self
            .client
            .post(self.url.clone())
            .header(http::header::AUTHORIZATION, token)
            .header(http::header::CONTENT_TYPE, content_type)
            .header("BrokerProperties", properties.to_header())
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| crate::http_client::error_chain(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(format!("{} answered {status}: {}", self.url, text.chars().take(300).collect::<String>()))
    }
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
    /// The JSON of the header, with the time in RFC 1123 (`GMT`) as Service Bus documents it.
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
    /// The queue `queue` of `connection`. On Azure its REST requests are sent with `client`: to the namespace,
    /// or to `rest_url` instead (a stand-in of Service Bus; the error names the setting that gave it). The
    /// emulator's queues are reached over AMQP, on a connection opened at the first send.
    pub fn connect(
        connection: &ServiceBusConnection,
        queue: &str,
        client: reqwest::Client,
        rest_url: Option<(&str, &str)>,
    ) -> Result<Self, String> {
        let (policy, key) = (connection.policy.clone(), connection.key.clone());
        let transport = match &connection.endpoint {
            Endpoint::Namespace(namespace) => {
                let resource = format!("https://{namespace}.servicebus.windows.net/{queue}/messages");
                let url = match rest_url {
                    Some((setting, base)) => stand_in_url(base, queue).map_err(|e| format!("{setting}: {e}"))?,
                    None => url::Url::parse(&resource).map_err(|e| format!("the queue name {queue:?}: {e}"))?,
                };
                Transport::Rest(RestQueue { client, url, resource, policy, key })
            }
            Endpoint::Emulator { host, port } => Transport::Amqp(AmqpSender::new(host, *port, queue, &policy, &key)),
        };
        Ok(ServiceBusQueue { transport, name: queue.to_owned() })
    }

    /// Sends one JSON message.
    pub async fn send(&self, body: &str, properties: &MessageProperties) -> Result<(), String> {
        let sent = match &self.transport {
            Transport::Rest(queue) => queue.send(body, "application/json", properties).await,
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

/// `<base>/<queue>/messages`: the URL of a stand-in of Service Bus, which gets the requests meant for
/// `https://<ns>.servicebus.windows.net` unchanged otherwise (the token is still for the namespace's URL).
fn stand_in_url(base: &str, queue: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
    if url.host_str().is_none() || !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{base:?} is not an http(s) URL with a host"));
    }
    url.join(&format!("/{queue}/messages")).map_err(|e| format!("{base:?} with the queue {queue:?}: {e}"))
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
    fn rest_requests_go_to_the_namespace_or_to_a_stand_in_and_the_token_is_always_for_the_namespace() {
        let connection = ServiceBusConnection::parse(
            "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=k",
        )
        .unwrap();
        let rest = |rest_url| match ServiceBusQueue::connect(
            &connection,
            "events",
            crate::http_client::client().unwrap(),
            rest_url,
        ) {
            Ok(ServiceBusQueue { transport: Transport::Rest(queue), .. }) => {
                Ok((queue.url.to_string(), queue.resource))
            }
            Ok(_) => panic!("a namespace is reached over REST"),
            Err(error) => Err(error),
        };
        let namespace = "https://acme.servicebus.windows.net/events/messages".to_owned();
        assert_eq!(rest(None), Ok((namespace.clone(), namespace.clone())));
        let stand_in = rest(Some(("SETTING", "http://127.0.0.1:9000/ignored")));
        assert_eq!(stand_in, Ok(("http://127.0.0.1:9000/events/messages".to_owned(), namespace)));
        assert_eq!(
            rest(Some(("SETTING", "file:///tmp/bus"))).err().unwrap(),
            "SETTING: \"file:///tmp/bus\" is not an http(s) URL with a host"
        );
        assert!(rest(Some(("SETTING", "127.0.0.1:9000"))).err().unwrap().starts_with("SETTING: \"127.0.0.1:9000\""));
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
