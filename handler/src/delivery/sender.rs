//! The HTTP side of a delivery: one signed POST, its timing and what came back.

use super::outcome::Response;
use super::retry::parse_retry_after;
use super::signing::{signature_header, Secret};
use super::ssrf;
use crate::webhooks::config::TargetAuth;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How much of a response is read (the rest is not waited for).
pub const MAX_RESPONSE_READ: usize = 64 * 1024;
/// How much of a response the attempt log keeps.
pub const RESPONSE_LOGGED: usize = 1024;
/// The most parsed target URLs a sender keeps (it forgets them all when it has this many).
const MAX_TARGETS: usize = 4096;

/// Sends deliveries. One per process: it holds the connection pool.
///
/// The HTTP client is built on first use (or by [`Sender::warm_up`] at start), on a blocking thread: building it
/// reads the system's CA certificates (~10 ms), longer than everything else the handler does before it can answer.
#[derive(Clone)]
pub struct Sender {
    client: Arc<tokio::sync::OnceCell<Result<reqwest::Client, String>>>,
    /// Target URLs parsed and checked before, by their text: parsing one (its host's IDNA mapping included)
    /// for every attempt was 2% of the handler's CPU under load, and a process sends to few distinct URLs.
    targets: Arc<Mutex<HashMap<Box<str>, reqwest::Url>>>,
    request_timeout: Duration,
    allow_private: bool,
}

/// Everything one request needs.
pub struct Request<'a> {
    pub url: &'a str,
    pub delivery_id: &'a str,
    pub body: &'a [u8],
    pub headers: &'a BTreeMap<String, String>,
    pub secrets: Vec<&'a Secret>,
    pub auth: Option<&'a TargetAuth>,
    pub correlation_id: Option<&'a str>,
}

/// What the attempt log keeps of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// When the request started, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The first KiB of the response body.
    #[serde(default)]
    pub response: String,
}

impl Sender {
    pub fn new(request_timeout: Duration, allow_private: bool) -> Sender {
        Sender { client: Arc::default(), targets: Arc::default(), request_timeout, allow_private }
    }

    /// Builds the HTTP client in the background, so that neither start-up nor the first delivery waits for it.
    /// A failure is logged: deliveries fail until it is fixed.
    pub fn warm_up(&self) {
        let sender = self.clone();
        tokio::spawn(async move {
            if let Err(error) = sender.client().await {
                tracing::error!(%error, "deliveries will fail until this is fixed");
            }
        });
    }

    async fn client(&self) -> Result<&reqwest::Client, String> {
        let built = self
            .client
            .get_or_init(|| {
                let sender = self.clone();
                async move {
                    let built = tokio::task::spawn_blocking(move || sender.build_client()).await;
                    built.unwrap_or_else(|e| Err(format!("cannot build the HTTP client: {e}")))
                }
            })
            .await;
        built.as_ref().map_err(Clone::clone)
    }

    fn build_client(&self) -> Result<reqwest::Client, String> {
        let mut builder = crate::http_client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Our schedule retries, logging each attempt. reqwest's own retries (of refused HTTP/2 streams)
            // would hide attempts, and prepare for them by copying every request.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .timeout(self.request_timeout)
            .connect_timeout(self.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("public-event-dispatcher/", env!("CARGO_PKG_VERSION")));
        if !self.allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        crate::http_client::build(builder)
    }

    /// Sends one request. Never fails: every failure is a [`Response::Failed`] with its reason.
    pub async fn send(&self, request: Request<'_>) -> (Response, AttemptRecord) {
        let at_ms = now_ms();
        let started = Instant::now();
        let (response, status_code, error, text) = match self.try_send(&request).await {
            Ok((code, retry_after, text)) => (Response::Status { code, retry_after }, Some(code), None, text),
            Err((error, transient)) => {
                (Response::Failed { error: error.clone(), transient }, None, Some(error), String::new())
            }
        };
        let record = AttemptRecord {
            at_ms,
            duration_ms: started.elapsed().as_millis() as u64,
            status_code,
            error,
            response: text,
        };
        (response, record)
    }

    /// `text` parsed, and checked against the SSRF guard when it applies; remembered only when it passes.
    fn target(&self, text: &str) -> Result<reqwest::Url, (String, bool)> {
        if let Some(url) = self.targets.lock().ok().and_then(|targets| targets.get(text).cloned()) {
            return Ok(url);
        }
        let url = reqwest::Url::parse(text).map_err(|e| (format!("invalid URL: {e}"), false))?;
        if !self.allow_private {
            check_literal_host(&url)?;
        }
        if let Ok(mut targets) = self.targets.lock() {
            if targets.len() >= MAX_TARGETS {
                targets.clear();
            }
            targets.insert(text.into(), url.clone());
        }
        Ok(url)
    }

    async fn try_send(&self, request: &Request<'_>) -> Result<(u16, Option<Duration>, String), (String, bool)> {
        let url = self.target(request.url)?;
        let timestamp = now_ms() / 1000;
        let mut builder = self.client().await.map_err(|error| (error, true))?.post(url);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        builder = builder
            .header("content-type", "application/json")
            .header("webhook-id", request.delivery_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(request.secrets.iter().copied(), request.delivery_id, timestamp, request.body),
            );
        if let Some(correlation_id) = request.correlation_id {
            builder = builder.header("x-correlation-id", correlation_id);
        }
        builder = match request.auth {
            Some(TargetAuth::Basic { username, password }) => builder.basic_auth(username, Some(password)),
            Some(TargetAuth::Bearer { token }) => builder.bearer_auth(token),
            None => builder,
        };
        let mut response = builder.body(request.body.to_vec()).send().await.map_err(describe)?;
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut head = Vec::new();
        let mut read = 0;
        // A receiver that streams forever must not hold the delivery: read at most 64 KiB, within the timeout.
        while read < MAX_RESPONSE_READ {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    let room = RESPONSE_LOGGED.saturating_sub(head.len());
                    head.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Ok((code, retry_after, String::from_utf8_lossy(&head).into_owned()))
    }
}

/// A readable reason for a failed request, and whether trying again can help. Never includes the URL, which
/// may carry credentials in its query.
fn describe(error: reqwest::Error) -> (String, bool) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return (refused.to_string(), false);
        }
        source = e.source();
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        detail = e.to_string();
        source = e.source();
    }
    if detail.is_empty() {
        (kind.to_owned(), true)
    } else {
        (format!("{kind}: {detail}"), true)
    }
}

fn check_literal_host(url: &reqwest::Url) -> Result<(), (String, bool)> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match ssrf::forbidden(ip) {
        Some(why) => Err((Refused { host: ip.to_string(), ip, why }.to_string(), false)),
        None => Ok(()),
    }
}

/// A target refused by the SSRF guard.
#[derive(Debug)]
struct Refused {
    host: String,
    ip: IpAddr,
    why: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {} resolves to {}, {} (private targets are not allowed)", self.host, self.ip, self.why)
    }
}

impl std::error::Error for Refused {}

/// Resolves host names, then drops the addresses the SSRF guard forbids; refuses when none is left.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| ssrf::forbidden(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                if let Some(first) = resolved.first() {
                    let why = ssrf::forbidden(first.ip()).unwrap_or("forbidden");
                    return Err(
                        Box::new(Refused { host, ip: first.ip(), why }) as Box<dyn std::error::Error + Send + Sync>
                    );
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remembered(sender: &Sender) -> usize {
        sender.targets.lock().unwrap().len()
    }

    #[test]
    fn targets_are_parsed_once_and_refusals_are_not_remembered() {
        let sender = Sender::new(Duration::from_secs(1), false);
        for _ in 0..2 {
            let (error, transient) = sender.target("http://10.0.0.1/hook").unwrap_err();
            assert!(error.starts_with("refused: 10.0.0.1 resolves to 10.0.0.1"), "{error}");
            assert!(!transient);
            assert!(sender.target("http//nope").unwrap_err().0.starts_with("invalid URL: "));
        }
        assert_eq!(remembered(&sender), 0);
        for _ in 0..2 {
            assert_eq!(sender.target("https://example.com/hook?a=1").unwrap().as_str(), "https://example.com/hook?a=1");
        }
        assert_eq!(remembered(&sender), 1);
        for i in 1..MAX_TARGETS {
            sender.target(&format!("https://example.com/{i}")).unwrap();
        }
        assert_eq!(remembered(&sender), MAX_TARGETS);
        sender.target("https://example.com/one-more").unwrap();
        assert_eq!(remembered(&sender), 1, "forgets them all when full");
    }

    #[test]
    fn private_targets_pass_when_allowed() {
        let sender = Sender::new(Duration::from_secs(1), true);
        assert_eq!(sender.target("http://10.0.0.1/hook").unwrap().host_str(), Some("10.0.0.1"));
    }
}
