//! Deliveries over HTTPS, as webhooks on the internet receive them: `handler local` as a process, a receiver
//! speaking TLS with a certificate of a test CA (`fixtures/tls/`). The dispatcher trusts the platform's roots,
//! read at its start; `SSL_CERT_FILE` names another bundle, as it does for OpenSSL.

use crate::support::{eventually, Dispatcher};
use axum::http::HeaderMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

const WAIT: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/tls").join(name)
}

/// TCP connections that become TLS streams; a failed handshake (the client refusing the certificate) is
/// dropped, and the next connection accepted.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// An HTTPS receiver at `https://localhost:<port>/`, recording what it gets.
async fn https_receiver() -> (String, Received) {
    tls_receiver(false).await
}

/// An HTTPS receiver that, with `client_auth`, completes a handshake only with a client certificate of the test
/// client CA (`fixtures/tls/client-ca.pem`).
async fn tls_receiver(client_auth: bool) -> (String, Received) {
    let certificates = CertificateDer::pem_file_iter(fixture("localhost.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = if client_auth {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(fixture("client-ca.pem")).unwrap() {
            roots.add(ca.unwrap()).unwrap();
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(certificates, key).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hook", tcp.local_addr().unwrap().port());
    let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(config)) };
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        log.lock().unwrap().push((headers, body));
        async {}
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn register_and_publish(dispatcher: &Dispatcher, url: &str) -> String {
    let (id, _) =
        dispatcher.register(json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": "tls"}})).await;
    dispatcher.publish(json!({"name": "ping", "payload": {"name": "tls"}})).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_with_a_trusted_certificate_gets_the_delivery_over_tls() {
    let (url, received) = https_receiver().await;
    let ca = fixture("ca.pem");
    let dispatcher = Dispatcher::start("https-trusted", &[], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    register_and_publish(&dispatcher, &url).await;

    eventually("the delivery over HTTPS", WAIT, || !received.lock().unwrap().is_empty()).await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"name": "ping", "payload": {}}));
    assert!(headers["webhook-signature"].to_str().unwrap().starts_with("v1,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_platform_does_not_trust_fails_the_attempt_and_says_why() {
    let (url, received) = https_receiver().await;
    let dispatcher = Dispatcher::start("https-untrusted", &["--retry-schedule", "1h"], &[]);
    let webhook = register_and_publish(&dispatcher, &url).await;

    let attempt = dispatcher.last_attempt(&webhook).await;
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate") && error.contains("UnknownIssuer"), "{attempt}");
    assert!(received.lock().unwrap().is_empty(), "nothing is sent to a server whose certificate is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_target_gets_the_delivery_with_the_client_certificate_and_refuses_it_without() {
    let (url, received) = tls_receiver(true).await;
    let ca = fixture("ca.pem");
    let dispatcher =
        Dispatcher::start("https-mtls", &["--retry-schedule", "1h"], &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    let pem = |name: &str| std::fs::read_to_string(fixture(name)).unwrap();
    let (certificate, key) = (pem("client.pem"), pem("client.key"));
    let register = |name: &str, auth: Value| {
        let body = json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": name}, "auth": auth,
                          "headers": {"x-api-key": "k-123"}});
        dispatcher.register(body)
    };
    let (with, _) = register("with", json!({"type": "mtls", "certificate": certificate, "privateKey": key})).await;
    // A certificate the receiver does not trust: the server's own, from the other test CA.
    let stranger = json!({"type": "mtls", "certificate": pem("localhost.pem"), "privateKey": pem("localhost.key")});
    let (other, _) = register("other", stranger).await;
    let (without, _) = register("without", Value::Null).await;
    for name in ["with", "other", "without"] {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": name}})).await;
    }

    eventually("the delivery over mTLS", WAIT, || !received.lock().unwrap().is_empty()).await;
    let (headers, _) = received.lock().unwrap()[0].clone();
    assert_eq!(headers["x-api-key"], "k-123", "combined with headers");
    assert_eq!(dispatcher.last_attempt(&with).await["statusCode"], 200);
    for webhook in [other, without] {
        let attempt = dispatcher.last_attempt(&webhook).await;
        assert!(attempt["statusCode"].is_null() && attempt["error"].as_str().is_some(), "{attempt}");
    }
    assert_eq!(received.lock().unwrap().len(), 1, "only the trusted certificate gets through");

    let shown = dispatcher.get(&format!("/webhooks/{with}")).await;
    assert_eq!(shown["auth"]["type"], "mtls");
    assert_eq!(shown["auth"]["certificate"], certificate.as_str());
    assert!(!shown.to_string().contains("PRIVATE KEY"), "the key is never shown: {shown}");
    assert!(!dispatcher.logs().contains("PRIVATE KEY"), "nor logged");
}
