//! The one TLS stack of the process, for every client, ours and the Azure SDK's alike: rustls with the ring
//! provider, trusting the platform's roots. reqwest (the Cosmos DB SDK's HTTP client, and the tests') is built
//! without a provider of its own (its default, aws-lc-rs, is a long C build in every CI run), so ring is
//! installed before any client is built: reqwest clients through [`builder`], the Cosmos DB client and the
//! deliveries' hyper client (`sender.rs`) after [`install`].

use std::sync::Once;

/// Installs ring as the process's rustls provider. Later calls, and a provider installed by someone else first,
/// leave it as it is.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A builder of an HTTP client, with the TLS stack installed.
#[allow(clippy::disallowed_methods)] // the one place allowed to
pub fn builder() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
}

/// An HTTP client could not be built; the words give the cause, such as a platform without CA certificates
/// (the `ca-certificates` package), which every client needs even for plain HTTP.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot build an HTTP client: {0}")]
pub struct ClientError(String);

pub fn build(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, ClientError> {
    builder.build().map_err(|error| ClientError(error_chain(&error)))
}

/// An HTTP client with reqwest's defaults.
pub fn client() -> Result<reqwest::Client, ClientError> {
    build(builder())
}

/// `error` and its causes, outermost first: reqwest's own message is only the outermost ("error sending
/// request"), the reason is in the causes.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_on_ring() {
        super::client().unwrap();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("installed");
        let ring = rustls::crypto::ring::default_provider();
        let suites = |p: &rustls::crypto::CryptoProvider| p.cipher_suites.iter().map(|s| s.suite()).collect::<Vec<_>>();
        assert_eq!(suites(provider), suites(&ring));
    }
}
