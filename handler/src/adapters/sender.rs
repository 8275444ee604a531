//! The HTTP sender (`ports::Sender`): one request of the core (`dispatcher_core::request`) on the wire, its
//! timing and what came back, through hyper's pooled client on rustls, with the SSRF guard applied to the
//! addresses a host name resolves to.

use super::guard::{AllowedNetworks, Refused, Resolver};
use super::oauth2::{AccessToken, ExchangeError, Tokens};
use async_trait::async_trait;
use bytes::Bytes;
use dispatcher_core::model::Attempt;
use dispatcher_core::model::{ClientCertificate, TargetAuth};
use dispatcher_core::policy::outcome::Response;
use dispatcher_core::policy::retry::parse_retry_after;
use dispatcher_core::policy::targets::{forbidden_host, http_url};
use dispatcher_core::request::{Method, Request};
use http::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER, USER_AGENT};
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use oauth2::{HttpRequest, HttpResponse};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls_platform_verifier::BuilderVerifierExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The HTTP client of deliveries: hyper's pooled client, on rustls for `https` targets. Not reqwest: its
/// layers (redirects, retries, parsing the URL again, building the request) were 8% of the handler's CPU
/// under load, for features a delivery must not use.
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// How much of a response is read and handed over (the rest is not waited for): what a success callback carries.
pub const MAX_RESPONSE_READ: usize = dispatcher_core::callback::RESPONSE_KEPT;
/// A target URL parsed, and what the SSRF guard makes of its host when it is a literal IP.
#[derive(Clone)]
struct Target {
    uri: Uri,
    forbidden: Option<(IpAddr, &'static str)>,
}

/// The most parsed target URLs a sender keeps (it forgets them all when it has this many).
const MAX_TARGETS: usize = 4096;

/// The most mTLS clients (one per client certificate) a sender keeps (it forgets them all when it has this many).
const MAX_IDENTITIES: usize = 256;

/// Sends deliveries. One per process: it holds the connection pool, one more per mTLS client certificate, and
/// the OAuth 2.0 tokens.
///
/// The HTTP client is built on first use (or by [`Sender::warm_up`] at start), on a blocking thread: building it
/// reads the system's CA certificates (~10 ms), longer than everything else the handler does before it can answer.
#[derive(Clone)]
pub struct Sender {
    client: Arc<tokio::sync::OnceCell<Result<HttpClient, String>>>,
    /// The client for tenants' targets when the operator allows private ones for its own: always guarded.
    guarded_client: Arc<tokio::sync::OnceCell<Result<HttpClient, String>>>,
    /// Clients presenting a certificate, by the SHA-256 of the certificate and key.
    identities: Arc<Mutex<HashMap<[u8; 32], HttpClient>>>,
    tokens: Tokens,
    /// Target URLs parsed and checked before, by their text: parsing one (its host's IDNA mapping included)
    /// for every attempt was 2% of the handler's CPU under load, and a process sends to few distinct URLs.
    targets: Arc<Mutex<HashMap<Box<str>, Target>>>,
    request_timeout: Duration,
    allow_private: bool,
    allowed_networks: AllowedNetworks,
}

impl Sender {
    pub fn new(request_timeout: Duration, allow_private: bool) -> Sender {
        Sender {
            client: Arc::default(),
            guarded_client: Arc::default(),
            identities: Arc::default(),
            tokens: Tokens::default(),
            targets: Arc::default(),
            request_timeout,
            allow_private,
            allowed_networks: AllowedNetworks::default(),
        }
    }

    /// This sender with private `networks` its guard lets through (for tenants' targets too).
    pub fn allowing(mut self, networks: AllowedNetworks) -> Sender {
        self.allowed_networks = networks;
        self
    }

    /// Builds the HTTP client in the background, so that neither start-up nor the first delivery waits for it.
    /// A failure is logged: deliveries fail until it is fixed.
    pub fn warm_up(&self) {
        let sender = self.clone();
        tokio::spawn(async move {
            if let Err(error) = sender.client(false).await {
                tracing::error!(%error, "deliveries will fail until this is fixed");
            }
        });
    }

    /// Whether a target is held to the SSRF guard: when the operator forbids private targets, or a tenant gave it.
    fn guards(&self, given_by_tenant: bool) -> bool {
        !self.allow_private || given_by_tenant
    }

    /// The client for targets `guarded` or not (the same one when the operator forbids private targets).
    async fn client(&self, guarded: bool) -> Result<&HttpClient, String> {
        let (cell, guarded) = match (self.allow_private, guarded) {
            (true, true) => (&self.guarded_client, true),
            (allow_private, _) => (&self.client, !allow_private),
        };
        let built = cell
            .get_or_init(|| {
                let sender = self.clone();
                async move {
                    let built = tokio::task::spawn_blocking(move || sender.build_client(None, guarded)).await;
                    built.unwrap_or_else(|e| Err(format!("cannot build the HTTP client: {e}")))
                }
            })
            .await;
        built.as_ref().map_err(Clone::clone)
    }

    /// The client that presents `certificate`, built on first use. An unusable certificate or key is a
    /// permanent failure of the attempt, which says what is wrong without showing the key.
    async fn client_with(&self, certificate: &ClientCertificate, guarded: bool) -> Result<HttpClient, Failure> {
        let digest: [u8; 32] = Sha256::new()
            .chain_update(&certificate.certificate)
            .chain_update(&certificate.private_key)
            .chain_update([u8::from(guarded)])
            .finalize()
            .into();
        if let Some(client) = self.identities.lock().ok().and_then(|clients| clients.get(&digest).cloned()) {
            return Ok(client);
        }
        let (sender, certificate) = (self.clone(), certificate.clone());
        let built = tokio::task::spawn_blocking(move || sender.build_client(Some(&certificate), guarded)).await;
        let client =
            built.unwrap_or_else(|e| Err(format!("cannot build the HTTP client: {e}"))).map_err(Failure::Permanent)?;
        if let Ok(mut clients) = self.identities.lock() {
            if clients.len() >= MAX_IDENTITIES {
                clients.clear();
            }
            clients.insert(digest, client.clone());
        }
        Ok(client)
    }

    fn build_client(&self, certificate: Option<&ClientCertificate>, guarded: bool) -> Result<HttpClient, String> {
        super::tls::install();
        let tls = rustls::ClientConfig::builder()
            .with_platform_verifier()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let tls = match certificate {
            None => tls.with_no_client_auth(),
            Some(identity) => {
                let (chain, key) = identity_of(identity)?;
                tls.with_client_auth_cert(chain, key).map_err(|e| format!("the mTLS certificate is unusable: {e}"))?
            }
        };
        let mut http = HttpConnector::new_with_resolver(Resolver { guarded, allowed: self.allowed_networks.clone() });
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.request_timeout.min(Duration::from_secs(10))));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector))
    }

    /// Sends one request. Never fails: every failure is a [`Response::Failed`] with its reason.
    async fn send_one(&self, request: Request<'_>) -> (Response, Attempt) {
        let at_ms = request.at_ms;
        let started = Instant::now();
        let (response, status_code, error, text) = match self.try_send(&request).await {
            Ok(Answer { code, retry_after, body }) => (Response::Status { code, retry_after }, Some(code), None, body),
            Err(failure) => {
                let (error, response) = failure.into_response();
                (response, None, Some(error), String::new())
            }
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let (signed_at, signature) = (Some(request.signed_at), request.signature().map(str::to_owned));
        let record = Attempt { at_ms, duration_ms, status_code, error, response: text, signed_at, signature };
        (response, record)
    }

    /// `text` parsed, and checked against the SSRF guard when it applies (`guarded`); remembered with the
    /// guard's verdict on its literal IP host, only when it passes.
    fn target(&self, text: &str, guarded: bool) -> Result<Uri, Failure> {
        let remembered = self.targets.lock().ok().and_then(|targets| targets.get(text).cloned());
        let target = match remembered {
            Some(target) => target,
            None => {
                // Parsed as a URL first: that maps an international host name to the ASCII a URI needs.
                let url = http_url(text).map_err(|problem| Failure::Permanent(format!("invalid URL: {problem}")))?;
                let uri = url.as_str().parse().map_err(|e| Failure::Permanent(format!("invalid URL: {e}")))?;
                Target { uri, forbidden: forbidden_host(&url) }
            }
        };
        let refused = target.forbidden.filter(|(ip, _)| guarded && self.allowed_networks.refuses(*ip).is_some());
        if let Some((ip, why)) = refused {
            return Err(Failure::Permanent(Refused { host: ip.to_string(), ip, why }.to_string()));
        }
        if let Ok(mut targets) = self.targets.lock() {
            if targets.len() >= MAX_TARGETS {
                targets.clear();
            }
            targets.entry(text.into()).or_insert_with(|| target.clone());
        }
        Ok(target.uri)
    }

    /// Sends `request` with its credentials: with a token for `oauth2` (a new one, once, when the target answers
    /// 401 to the cached one), through the client presenting the certificate for `mtls`.
    async fn try_send(&self, request: &Request<'_>) -> Result<Answer, Failure> {
        let guarded = self.guards(request.guarded);
        let uri = self.target(request.url, guarded)?;
        let with_certificate;
        let client = match request.auth {
            Some(TargetAuth::Mtls(certificate)) => {
                with_certificate = self.client_with(certificate, guarded).await?;
                &with_certificate
            }
            _ => self.client(guarded).await.map_err(Failure::Transient)?,
        };
        let Some(TargetAuth::OAuth2(oauth2)) = request.auth else {
            return self.exchange_once(client, build_request(uri, request, None)?).await;
        };
        // Owned futures: a closure whose futures borrow `self` is not `Send` for every lifetime the trait asks.
        let sender = self.clone();
        let exchange = move |request: HttpRequest| {
            let sender = sender.clone();
            async move { sender.exchange(request, guarded).await }
        };
        let token = self.tokens.token(oauth2, None, &exchange).await.map_err(|e| Failure::Transient(e.to_string()))?;
        let answer = self.exchange_once(client, build_request(uri.clone(), request, Some(&token))?).await?;
        if answer.code != 401 {
            return Ok(answer);
        }
        let fresh =
            self.tokens.token(oauth2, Some(&token), &exchange).await.map_err(|e| Failure::Transient(e.to_string()))?;
        self.exchange_once(client, build_request(uri, request, Some(&fresh))?).await
    }

    /// A small request of the dispatcher's own (an OAuth 2.0 token, an OpenID configuration), guarded as the
    /// target it is for, within the request timeout.
    async fn exchange(&self, request: HttpRequest, guarded: bool) -> Result<HttpResponse, ExchangeError> {
        let (parts, body) = request.into_parts();
        let uri =
            self.target(&parts.uri.to_string(), guarded).map_err(|failure| ExchangeError(failure.into_response().0))?;
        let mut request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        *request.uri_mut() = uri;
        request.headers_mut().insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        let client = self.client(guarded).await.map_err(ExchangeError)?.clone();
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let timed_out = |_| ExchangeError("timed out".to_owned());
        let response = tokio::time::timeout_at(deadline, client.request(request))
            .await
            .map_err(timed_out)?
            .map_err(|error| ExchangeError(describe(&error).into_response().0))?;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout_at(deadline, body.collect())
            .await
            .map_err(timed_out)?
            .map_err(|error| ExchangeError(format!("reading the answer failed: {error}")))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body.to_vec()))
    }

    async fn exchange_once(
        &self,
        client: &HttpClient,
        http_request: http::Request<Full<Bytes>>,
    ) -> Result<Answer, Failure> {
        // The timeout covers the whole attempt, reading the response included.
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let response = match tokio::time::timeout_at(deadline, client.request(http_request)).await {
            Ok(sent) => sent.map_err(|error| describe(&error))?,
            Err(_) => return Err(Failure::Transient("timed out".to_owned())),
        };
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut body = response.into_body();
        let (mut head, mut read) = (Vec::new(), 0);
        // A receiver that streams forever must not hold the delivery: read at most 64 KiB, within the timeout.
        while read < MAX_RESPONSE_READ {
            let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await else { break };
            if let Ok(chunk) = frame.into_data() {
                read += chunk.len();
                let room = MAX_RESPONSE_READ.saturating_sub(head.len());
                head.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
        Ok(Answer { code, retry_after, body: String::from_utf8_lossy(&head).into_owned() })
    }
}

/// What a receiver answered: its status, when it asked to be retried (`Retry-After`), and the start of its body.
struct Answer {
    code: u16,
    retry_after: Option<Duration>,
    body: String,
}

/// Why no answer came: whether trying again can help (a timeout, a refused connection) or cannot (an invalid
/// URL, a target the SSRF guard refuses, an unusable certificate), and a readable reason without the URL.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Transient(String),
    Permanent(String),
}

impl Failure {
    fn into_response(self) -> (String, Response) {
        let (error, transient) = match self {
            Failure::Transient(error) => (error, true),
            Failure::Permanent(error) => (error, false),
        };
        (error.clone(), Response::Failed { error, transient })
    }
}

const USER_AGENT_VALUE: &str = concat!("public-event-dispatcher/", env!("CARGO_PKG_VERSION"));

/// The certificate chain and key of an mTLS identity, from PEM.
fn identity_of(identity: &ClientCertificate) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(identity.certificate.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the mTLS certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the mTLS certificate holds no certificate".to_owned());
    }
    // The key's own error could quote it: say only what is wrong.
    let key = PrivateKeyDer::from_pem_slice(identity.private_key.as_bytes())
        .map_err(|_| "the mTLS private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned())?;
    Ok((chain, key))
}

/// `request` to `uri`, with the headers the transport adds: who sends it, that any answer will do,
/// and the OAuth 2.0 `token` when there is one.
fn build_request(
    uri: Uri,
    request: &Request<'_>,
    token: Option<&AccessToken>,
) -> Result<http::Request<Full<Bytes>>, Failure> {
    let method = match request.method {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
    };
    let mut http_request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .body(Full::new(Bytes::copy_from_slice(request.body.as_bytes())))
        .map_err(|e| Failure::Permanent(format!("invalid request: {e}")))?;
    let headers = http_request.headers_mut();
    for header in &request.headers {
        // A configured header's value may be a credential: say what is wrong without repeating it.
        let invalid = |what: &str| Failure::Permanent(format!("invalid header {:?}: {what}", header.name));
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| invalid("not a header name"))?;
        let mut value = HeaderValue::from_str(&header.value).map_err(|_| invalid("its value is not a header value"))?;
        value.set_sensitive(header.sensitive);
        headers.insert(name, value);
    }
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.0))
            .map_err(|_| Failure::Transient("the token endpoint gave a token that is not a header value".to_owned()))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    // The span of the attempt (or callback) this request is made in: the receiver can continue its trace.
    let traceparent = crate::telemetry::traceparent(&tracing::Span::current());
    if let Some(value) = traceparent.and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    Ok(http_request)
}

/// A readable reason for a failed request, and whether trying again can help. Never includes the URL, which
/// may carry credentials in its query.
fn describe(error: &hyper_util::client::legacy::Error) -> Failure {
    let chain = std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |e| e.source());
    if let Some(refused) = chain.clone().find_map(|e| e.downcast_ref::<Refused>()) {
        return Failure::Permanent(refused.to_string());
    }
    let kind = if error.is_connect() { "could not connect" } else { "request failed" };
    // The innermost cause says what happened ("Connection refused"); the outer ones only where.
    match chain.skip(1).last().map(|cause| cause.to_string()).filter(|cause| !cause.is_empty()) {
        Some(cause) => Failure::Transient(format!("{kind}: {cause}")),
        None => Failure::Transient(kind.to_owned()),
    }
}

#[async_trait]
impl crate::ports::Sender for Sender {
    async fn send(&self, request: Request<'_>) -> (Response, Attempt) {
        self.send_one(request).await
    }
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
            let Failure::Permanent(error) = sender.target("http://10.0.0.1/hook", true).unwrap_err() else {
                panic!("a refused target is a permanent failure")
            };
            assert!(error.starts_with("refused: 10.0.0.1 resolves to 10.0.0.1"), "{error}");
            let Failure::Permanent(error) = sender.target("http//nope", true).unwrap_err() else { panic!("permanent") };
            assert!(error.starts_with("invalid URL: "), "{error}");
        }
        assert_eq!(remembered(&sender), 0);
        for _ in 0..2 {
            assert_eq!(sender.target("https://example.com/hook?a=1", true).unwrap(), "https://example.com/hook?a=1");
        }
        assert_eq!(remembered(&sender), 1);
        for i in 1..MAX_TARGETS {
            sender.target(&format!("https://example.com/{i}"), true).unwrap();
        }
        assert_eq!(remembered(&sender), MAX_TARGETS);
        sender.target("https://example.com/one-more", true).unwrap();
        assert_eq!(remembered(&sender), 1, "forgets them all when full");
    }

    #[test]
    fn a_request_goes_out_with_every_header_and_credentials_stay_out_of_debug_output() {
        use dispatcher_core::request::Header;
        let plain = |name, value: &'static str| Header { name, value: value.into(), sensitive: false };
        let request = Request {
            method: Method::Post,
            url: "https://example.com/hook",
            headers: vec![
                plain("webhook-id", "dlv_1"),
                plain("x-api-key", "k"),
                Header { name: "authorization", value: "Bearer t0k3n".into(), sensitive: true },
            ],
            body: "{}",
            auth: None,
            signed_at: 0,
            at_ms: 0,
            guarded: false,
        };
        let built = build_request("https://example.com/hook".parse().unwrap(), &request, None).unwrap();
        assert_eq!(
            (built.method(), built.uri().to_string().as_str()),
            (&http::Method::POST, "https://example.com/hook")
        );
        let header = |name: &str| built.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(header("webhook-id").as_deref(), Some("dlv_1"));
        assert_eq!(header("x-api-key").as_deref(), Some("k"));
        assert_eq!(header("authorization").as_deref(), Some("Bearer t0k3n"));
        assert!(built.headers()["authorization"].is_sensitive(), "kept out of debug output");
        assert!(header("user-agent").unwrap().starts_with("public-event-dispatcher/"));

        let get = Request { method: Method::Get, body: "", ..request.clone() };
        let built = build_request("https://example.com/q?id=1".parse().unwrap(), &get, None).unwrap();
        assert_eq!((built.method(), built.uri().query()), (&http::Method::GET, Some("id=1")));
        let bad = Request { headers: vec![plain("x-bad", "line\nbreak")], ..request };
        let failure = build_request("https://example.com/".parse().unwrap(), &bad, None).unwrap_err();
        assert_eq!(failure, Failure::Permanent("invalid header \"x-bad\": its value is not a header value".into()));
    }

    #[test]
    fn private_targets_pass_when_allowed_except_a_tenant_s() {
        let sender = Sender::new(Duration::from_secs(1), true);
        let guarded = sender.guards(false);
        assert_eq!(sender.target("http://10.0.0.1/hook", guarded).unwrap().host(), Some("10.0.0.1"));
        // Remembered as passing unguarded: a tenant's request for the same URL is still refused.
        let Failure::Permanent(error) = sender.target("http://10.0.0.1/hook", sender.guards(true)).unwrap_err() else {
            panic!("a refused target is a permanent failure")
        };
        assert!(error.starts_with("refused: 10.0.0.1"), "{error}");
        assert!(Sender::new(Duration::from_secs(1), false).guards(false));
    }
}
