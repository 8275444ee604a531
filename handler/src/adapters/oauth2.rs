//! OAuth 2.0 access tokens for `oauth2` targets: the client credentials grant (RFC 6749 §4.4) through the
//! `oauth2` crate, the token endpoint given or found by OpenID Connect discovery from the issuer. One token per
//! set of credentials, shared by every attempt of the process: concurrent attempts wait for the one request
//! that fetches it, and it is used until shortly before it expires, or until a target answers 401.
//!
//! HTTP goes through the function the caller passes (the sender's client, with its SSRF guard and timeout).

use dispatcher_core::model::OAuth2Client;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RequestTokenError, Scope, TokenResponse};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A token is renewed this long before it expires (or, for short-lived ones, when a quarter of its life is
/// left), so that no request carries one that expires on the way.
const EARLY: Duration = Duration::from_secs(30);
/// How long a token without `expires_in` is used.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// How long a discovered token endpoint is trusted before the provider's configuration is read again.
const DISCOVERY_LIFETIME: Duration = Duration::from_secs(3600);
/// The most sets of credentials remembered (all are forgotten when there are this many).
const MAX_CLIENTS: usize = 4096;

/// An access token, as sent in `Authorization: Bearer`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

/// Why an HTTP exchange failed, as the caller's function reports it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExchangeError(pub String);

/// Why no token came for a set of credentials: what the endpoint (or its discovery) answered, never a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// The tokens of every set of credentials this process sends with.
#[derive(Clone, Default)]
pub struct Tokens {
    slots: Arc<Mutex<HashMap<OAuth2Client, Arc<tokio::sync::Mutex<Slot>>>>>,
}

/// What is known of one set of credentials: its token (until when it is used), its token endpoint, and how the
/// endpoint takes them.
#[derive(Default)]
struct Slot {
    token: Option<(AccessToken, Instant)>,
    endpoint: Option<(Endpoint, Instant)>,
}

#[derive(Clone)]
struct Endpoint {
    url: String,
    /// The endpoint takes the client's credentials in the form body (`client_secret_post`), not in
    /// `Authorization` (`client_secret_basic`, the default RFC 6749 asks every server to support).
    post: bool,
}

impl Tokens {
    /// A token for `client`: the cached one while it is fresh, else a new one. With `stale`, the token a target
    /// just refused: a new one unless another attempt has replaced it meanwhile.
    pub async fn token<F, Fut>(
        &self,
        client: &OAuth2Client,
        stale: Option<&AccessToken>,
        http: &F,
    ) -> Result<AccessToken, TokenError>
    where
        F: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<HttpResponse, ExchangeError>> + Send + 'static,
    {
        let slot = self.slot(client);
        let mut slot = slot.lock().await;
        let now = Instant::now();
        if let Some((token, renew_at)) = &slot.token {
            if *renew_at > now && Some(token) != stale {
                return Ok(token.clone());
            }
        }
        slot.token = None;
        let endpoint = match &slot.endpoint {
            Some((endpoint, until)) if *until > now => endpoint.clone(),
            _ => {
                let found = endpoint(client, http).await.map_err(TokenError)?;
                slot.endpoint = Some((found.clone(), now + DISCOVERY_LIFETIME));
                found
            }
        };
        let (token, lifetime, post) = match fetch(client, &endpoint, http).await {
            // A server that refuses the credentials in `Authorization` may want them in the body (RFC 6749 §2.3.1).
            Err(Fetch::InvalidClient(_)) if !endpoint.post => {
                let post = Endpoint { post: true, ..endpoint };
                let (token, lifetime) = fetch(client, &post, http).await.map_err(Fetch::into_error)?;
                (token, lifetime, true)
            }
            fetched => fetched.map(|(token, lifetime)| (token, lifetime, endpoint.post)).map_err(Fetch::into_error)?,
        };
        if let Some((endpoint, _)) = slot.endpoint.as_mut() {
            endpoint.post = post;
        }
        slot.token = Some((token.clone(), Instant::now() + lifetime - EARLY.min(lifetime / 4)));
        Ok(token)
    }

    fn slot(&self, client: &OAuth2Client) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slots.len() >= MAX_CLIENTS && !slots.contains_key(client) {
            slots.clear();
        }
        slots.entry(client.clone()).or_default().clone()
    }
}

/// Why no token came.
enum Fetch {
    /// The endpoint refused the client's credentials (`invalid_client`).
    InvalidClient(String),
    Other(String),
}

impl Fetch {
    fn into_error(self) -> TokenError {
        match self {
            Fetch::InvalidClient(message) | Fetch::Other(message) => TokenError(message),
        }
    }
}

/// The token endpoint of `client`: its `tokenUrl`, or the `token_endpoint` of its issuer's OpenID configuration.
async fn endpoint<F, Fut>(client: &OAuth2Client, http: &F) -> Result<Endpoint, String>
where
    F: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, ExchangeError>> + Send + 'static,
{
    if let Some(url) = &client.token_url {
        return Ok(Endpoint { url: url.clone(), post: false });
    }
    let issuer = client.issuer.as_deref().unwrap_or_default();
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let failed = |why: String| format!("OpenID Connect discovery at {url} failed: {why}");
    let request = http::Request::get(&url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| failed(e.to_string()))?;
    let response = http(request).await.map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status().as_u16())));
    }
    #[derive(serde::Deserialize)]
    struct Configuration {
        issuer: String,
        token_endpoint: String,
        #[serde(default)]
        token_endpoint_auth_methods_supported: Vec<String>,
    }
    let configuration: Configuration =
        serde_json::from_slice(response.body()).map_err(|e| failed(format!("not an OpenID configuration: {e}")))?;
    // OpenID Connect Discovery §4.3: the configuration must be the issuer's own.
    if configuration.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(failed(format!("it names the issuer {:?}, not {issuer:?}", configuration.issuer)));
    }
    let methods = &configuration.token_endpoint_auth_methods_supported;
    let post = methods.iter().any(|m| m == "client_secret_post") && !methods.iter().any(|m| m == "client_secret_basic");
    Ok(Endpoint { url: configuration.token_endpoint, post })
}

/// One client credentials request to `endpoint`: the token and how long it lives.
async fn fetch<F, Fut>(client: &OAuth2Client, endpoint: &Endpoint, http: &F) -> Result<(AccessToken, Duration), Fetch>
where
    F: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<HttpResponse, ExchangeError>> + Send + 'static,
{
    let url = oauth2::TokenUrl::new(endpoint.url.clone())
        .map_err(|e| Fetch::Other(format!("the token endpoint {} is not a URL: {e}", endpoint.url)))?;
    let oauth = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_client_secret(ClientSecret::new(client.client_secret.clone()))
        .set_token_uri(url)
        .set_auth_type(if endpoint.post { AuthType::RequestBody } else { AuthType::BasicAuth });
    let mut request = oauth.exchange_client_credentials();
    for scope in client.scope.iter().flat_map(|s| s.split_whitespace()) {
        request = request.add_scope(Scope::new(scope.to_owned()));
    }
    if let Some(audience) = &client.audience {
        request = request.add_extra_param("audience", audience.clone());
    }
    // The status the endpoint answered, for the attempt log (the crate's errors carry only its body).
    let status = Arc::new(Mutex::new(None));
    let (seen, http) = (status.clone(), http.clone());
    let observed = move |request: HttpRequest| {
        let sent = http(request);
        let status = seen.clone();
        async move {
            let response = sent.await?;
            *status.lock().unwrap_or_else(|p| p.into_inner()) = Some(response.status().as_u16());
            Ok::<_, ExchangeError>(response)
        }
    };
    let answered = request.request_async(&observed).await;
    let status = status.lock().unwrap_or_else(|p| p.into_inner()).map(|s| format!("HTTP {s} ")).unwrap_or_default();
    let at = &endpoint.url;
    match answered {
        Ok(token) => {
            let lifetime = token.expires_in().unwrap_or(DEFAULT_LIFETIME);
            Ok((AccessToken(token.access_token().secret().clone()), lifetime))
        }
        Err(RequestTokenError::ServerResponse(error)) => {
            let description = error.error_description().map(|d| format!(" ({d})")).unwrap_or_default();
            let message = format!("the token endpoint {at} answered {status}{}{description}", error.error());
            match error.error() {
                oauth2::basic::BasicErrorResponseType::InvalidClient => Err(Fetch::InvalidClient(message)),
                _ => Err(Fetch::Other(message)),
            }
        }
        Err(RequestTokenError::Request(error)) => {
            Err(Fetch::Other(format!("the token endpoint {at} could not be reached: {error}")))
        }
        Err(RequestTokenError::Parse(error, _)) => {
            Err(Fetch::Other(format!("the token endpoint {at} answered {status}with no token: {error}")))
        }
        Err(RequestTokenError::Other(error)) => {
            Err(Fetch::Other(format!("the token endpoint {at} answered {status}with no token: {error}")))
        }
    }
}
