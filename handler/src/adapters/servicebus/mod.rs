//! Service Bus, over AMQP with the Azure SDK's `azure_core_amqp` crate: to a namespace on Azure (amqps, port
//! 5671) and to the Service Bus emulator (plain amqp, port 5672) alike.
//!
//! - this file: the connection (a connection string, or a namespace and the managed identity), and the token
//!   of the claims-based security handshake;
//! - `sender.rs`: one queue's sender: the connection, the CBS `put-token`, the link, reconnecting after a failure;
//! - `queues.rs`: the ports on it: the events queue (`ports::EventQueue`) and the deliveries queue
//!   (`ports::DeliveryQueue`, logging each delivery before its job is sent).
//!
//! The `azure_messaging_servicebus` crate is not used: it is the legacy REST client (0.21, no AMQP, no
//! emulator), where `azure_core_amqp` is the official AMQP stack of the Azure SDK for Rust, on the same
//! `azure_core` as Cosmos DB's SDK.

mod queues;
mod sender;

pub use queues::{ServiceBusDeliveries, ServiceBusEvents};
pub use sender::{Outgoing, QueueSender, EVENT_ID_PROPERTY, TRY_PROPERTY};

use crate::adapters::identity::{IdentityError, ManagedIdentity};
use base64::Engine as _;
use hmac::{Hmac, Mac};

/// A Service Bus namespace and how to authenticate to it: the parts of a connection string
/// (`Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=<rule>;SharedAccessKey=<key>`, or the
/// emulator's, which adds `UseDevelopmentEmulator=true` to an `Endpoint=sb://<host>[:port]`), or a namespace
/// and the app's managed identity (the setting `ServiceBusConnection__fullyQualifiedNamespace`). Its `Debug`
/// does not show the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceBusConnection {
    pub endpoint: Endpoint,
    pub auth: Auth,
}

/// How the handler proves it may send: a SAS token signed with a key, or a token of the managed identity.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    SharedAccessKey { policy: String, key: String },
    ManagedIdentity(ManagedIdentity),
}

/// The scope of Microsoft Entra tokens for Service Bus, in every namespace.
const ENTRA_SCOPE: &str = "https://servicebus.azure.net/.default";

impl ServiceBusConnection {
    /// A token for `queue`, valid until about `expiry` (Unix seconds), with its CBS token type; the managed
    /// identity's expires when its endpoint says (returned in place of `expiry`).
    pub async fn token(&self, queue: &str, expiry: u64) -> Result<(String, &'static str, u64), IdentityError> {
        match &self.auth {
            Auth::SharedAccessKey { policy, key } => {
                Ok((sas_token(&self.audience(queue), policy, key, expiry), "servicebus.windows.net:sastoken", expiry))
            }
            Auth::ManagedIdentity(identity) => {
                let token = identity.token(ENTRA_SCOPE).await?;
                let expires = u64::try_from(token.expires_on.unix_timestamp()).unwrap_or(0);
                Ok((token.token.secret().to_owned(), "jwt", expires))
            }
        }
    }

    /// What a token for `queue` is for: `sb://<host>/<queue>`.
    pub fn audience(&self, queue: &str) -> String {
        format!("sb://{}/{queue}", self.endpoint.host())
    }

    /// The namespace `fully_qualified` (`<ns>.servicebus.windows.net`, or `localhost:<port>` for a broker on this
    /// machine, spoken to without TLS), reached with the managed identity.
    pub fn with_identity(
        fully_qualified: &str,
        identity: ManagedIdentity,
    ) -> Result<ServiceBusConnection, ConnectionError> {
        let host = fully_qualified.trim_start_matches("sb://").trim_end_matches('/');
        let (name, _) = host.rsplit_once(':').unwrap_or((host, ""));
        let endpoint = if ["localhost", "127.0.0.1", "[::1]"].contains(&name) {
            local_endpoint(host)?
        } else {
            namespace(host).ok_or_else(|| format!("{fully_qualified:?} is not <namespace>.servicebus.windows.net"))?
        };
        Ok(ServiceBusConnection { endpoint, auth: Auth::ManagedIdentity(identity) })
    }
}

/// What is wrong with a connection string or a namespace; never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConnectionError(String);

impl From<&str> for ConnectionError {
    fn from(problem: &str) -> Self {
        ConnectionError(problem.to_owned())
    }
}

impl From<String> for ConnectionError {
    fn from(problem: String) -> Self {
        ConnectionError(problem)
    }
}

/// A namespace's host name: `<ns>.servicebus.windows.net`, or the like in national clouds
/// (`.servicebus.chinacloudapi.cn`, `.servicebus.usgovcloudapi.net`).
fn namespace(host: &str) -> Option<Endpoint> {
    let (ns, cloud) = host.split_once(".servicebus.")?;
    let valid = !ns.is_empty() && !cloud.is_empty() && !host.contains(['/', ':', ' ']);
    valid.then(|| Endpoint::Namespace(host.to_owned()))
}

/// Where the queues are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A namespace on Azure, by its host name, reached over AMQP with TLS.
    Namespace(String),
    /// The Service Bus emulator, or another broker on this machine, reached over AMQP without TLS (port 5672
    /// unless the endpoint names one).
    Emulator { host: String, port: u16 },
}

impl Endpoint {
    /// The AMQP URL of the connection.
    pub fn url(&self) -> String {
        match self {
            Endpoint::Namespace(host) => format!("amqps://{host}"),
            Endpoint::Emulator { host, port } => format!("amqp://{host}:{port}"),
        }
    }

    /// The host name the broker knows itself by: what a token's audience names.
    pub fn host(&self) -> String {
        match self {
            Endpoint::Namespace(host) => host.clone(),
            Endpoint::Emulator { host, .. } => host.clone(),
        }
    }
}

impl std::fmt::Debug for ServiceBusConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.auth {
            Auth::SharedAccessKey { policy, .. } => {
                write!(f, "ServiceBusConnection({:?}, {policy}, key ***)", self.endpoint)
            }
            Auth::ManagedIdentity(identity) => {
                write!(f, "ServiceBusConnection({:?}, managed identity {identity:?})", self.endpoint)
            }
        }
    }
}

/// A SAS token for `uri` (docs/azure-functions.md, "Service Bus"): `sig` is the HMAC-SHA256, with the key's
/// UTF-8 bytes, of the URL-encoded URI, a newline and the expiry in Unix seconds. (Neither `azure_core` nor
/// `azure_core_amqp` makes SAS tokens; they are the one piece of the protocol written here.)
pub fn sas_token(uri: &str, policy: &str, key: &str, expiry: u64) -> String {
    let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let resource = encode(uri);
    // HMAC takes a key of any length: the empty signature never happens.
    let signature = match Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{resource}\n{expiry}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={}", encode(&signature), encode(policy))
}

impl ServiceBusConnection {
    /// Reads a connection string; the error names what is missing or wrong, never the key.
    pub fn parse(text: &str) -> Result<ServiceBusConnection, ConnectionError> {
        let part = |name: &str| {
            text.split(';').find_map(|p| {
                p.trim().split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_owned())
            })
        };
        let endpoint = part("Endpoint").ok_or("no Endpoint=sb://<namespace>.servicebus.windows.net/")?;
        let host = endpoint.trim_start_matches("sb://").trim_end_matches('/');
        let emulator = part("UseDevelopmentEmulator").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint = if emulator {
            local_endpoint(host).map_err(|e| format!("Endpoint {endpoint:?} of the emulator: {e}"))?
        } else {
            namespace(host)
                .ok_or_else(|| format!("Endpoint {endpoint:?} is not sb://<namespace>.servicebus.windows.net/"))?
        };
        let policy = part("SharedAccessKeyName").ok_or("no SharedAccessKeyName")?;
        let key = part("SharedAccessKey").filter(|k| !k.is_empty()).ok_or("no SharedAccessKey")?;
        Ok(ServiceBusConnection { endpoint, auth: Auth::SharedAccessKey { policy, key } })
    }
}

fn local_endpoint(host: &str) -> Result<Endpoint, ConnectionError> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, port.parse().map_err(|_| format!("the port {port:?} is not a number"))?),
        None => (host, 5672),
    };
    if name.is_empty() || name.contains('/') {
        return Err("it is not sb://<host>[:port]".into());
    }
    Ok(Endpoint::Emulator { host: name.to_owned(), port })
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
        assert_eq!(connection.endpoint, Endpoint::Namespace("acme-bus.servicebus.windows.net".into()));
        assert_eq!(connection.endpoint.url(), "amqps://acme-bus.servicebus.windows.net");
        assert_eq!(connection.audience("events"), "sb://acme-bus.servicebus.windows.net/events");
        assert!(matches!(&connection.auth, Auth::SharedAccessKey { policy, .. } if policy == "send"));
        assert!(!format!("{connection:?}").contains("c2VjcmV0"));
        let error = ServiceBusConnection::parse("Endpoint=sb://localhost/;SharedAccessKeyName=a;SharedAccessKey=k3y")
            .unwrap_err();
        assert_eq!(error, "Endpoint \"sb://localhost/\" is not sb://<namespace>.servicebus.windows.net/".into());
        assert_eq!(
            ServiceBusConnection::parse("Endpoint=sb://a.servicebus.windows.net/;SharedAccessKeyName=a").unwrap_err(),
            "no SharedAccessKey".into()
        );
    }

    #[test]
    fn identity_connections_name_a_namespace_in_any_cloud_or_a_local_broker() {
        let identity = ManagedIdentity::new(None).unwrap();
        let endpoint =
            |namespace: &str| ServiceBusConnection::with_identity(namespace, identity.clone()).map(|c| c.endpoint);
        let azure = endpoint("acme-bus.servicebus.windows.net").unwrap();
        assert_eq!(azure.url(), "amqps://acme-bus.servicebus.windows.net");
        assert_eq!(
            endpoint("sb://acme.servicebus.chinacloudapi.cn/").unwrap().host(),
            "acme.servicebus.chinacloudapi.cn"
        );
        assert_eq!(endpoint("localhost:5673"), Ok(Endpoint::Emulator { host: "localhost".into(), port: 5673 }));
        assert_eq!(endpoint("acme-bus"), Err("\"acme-bus\" is not <namespace>.servicebus.windows.net".into()));
        assert_eq!(
            endpoint("evil.example:5672"),
            Err("\"evil.example:5672\" is not <namespace>.servicebus.windows.net".into())
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
        assert_eq!(emulator("sb://localhost").unwrap().url(), "amqp://localhost:5672");
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
}
