//! The HTTP request of an attempt, as data: the URL, the headers and the exact body. Built here, with the time
//! passed in, so that what a receiver gets is decided by plain functions; the sender only puts it on the wire.

use crate::model::{Delivery, Secret, TargetAuth, Webhook};
use crate::policy::signing::signature_header;
use base64::Engine as _;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One request to make: a delivery's POST, or an enricher's GET or POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: Vec<Header<'a>>,
    pub body: &'a str,
    /// The target's credentials. Basic and bearer ones are in `headers` already; for `oauth2` the sender adds a
    /// token, for `mtls` it presents the certificate.
    pub auth: Option<&'a TargetAuth>,
    /// The `webhook-timestamp`: when it was signed, in seconds since the Unix epoch.
    pub signed_at: i64,
    /// When the attempt is made, in milliseconds since the Unix epoch: the time the service's clock gave, which
    /// the attempt log keeps.
    pub at_ms: i64,
    /// The target was given by a tenant: the SSRF guard applies to it (and to its token endpoint) whatever the
    /// operator allows for its own webhooks.
    pub guarded: bool,
}

/// The methods the dispatcher sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl Request<'_> {
    /// The `webhook-signature` header, for the attempt log.
    pub fn signature(&self) -> Option<&str> {
        self.headers.iter().find(|h| h.name == "webhook-signature").map(|h| h.value.as_ref())
    }
}

/// One header of a request; `sensitive` ones (credentials) are kept out of debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
    pub sensitive: bool,
}

impl std::fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.sensitive { "***" } else { &self.value };
        write!(f, "{}: {value}", self.name)
    }
}

/// Headers the dispatcher sets itself on every delivery; a webhook cannot configure them.
pub const RESERVED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "traceparent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-correlation-id",
];

/// The signed POST of `delivery` at `now_ms`: to its webhook's URL with the webhook's headers and `auth`, or,
/// for a callback (`callback::CallbackType`), to its callback URL with `callbackAuth`; `None` when the webhook
/// has no such URL any more. The Standard Webhooks headers are signed with every secret valid now.
pub fn delivery<'a>(delivery: &'a Delivery, webhook: &'a Webhook, now_ms: i64) -> Option<Request<'a>> {
    static NO_HEADERS: BTreeMap<String, String> = BTreeMap::new();
    let config = &webhook.config;
    let (url, headers, auth) = match delivery.callback {
        None => (config.url.as_str(), &config.headers, config.auth.as_ref()),
        Some(kind) => (kind.url(config)?, &NO_HEADERS, config.callback_auth.as_ref()),
    };
    let signed = Signed {
        url,
        id: delivery.id.as_str(),
        body: &delivery.body,
        headers,
        secrets: webhook.signing_secrets(now_ms),
        auth,
        correlation_id: delivery.correlation_id.as_deref(),
        guarded: config.tenant.is_some(),
    };
    Some(signed.request(now_ms))
}

struct Signed<'a> {
    url: &'a str,
    id: &'a str,
    body: &'a str,
    headers: &'a BTreeMap<String, String>,
    secrets: Vec<&'a Secret>,
    auth: Option<&'a TargetAuth>,
    correlation_id: Option<&'a str>,
    guarded: bool,
}

impl<'a> Signed<'a> {
    fn request(self, now_ms: i64) -> Request<'a> {
        let timestamp = now_ms.div_euclid(1000);
        let plain = |name: &'a str, value: Cow<'a, str>| Header { name, value, sensitive: false };
        let mut headers = Vec::with_capacity(5 + self.headers.len());
        headers.push(plain("content-type", "application/json".into()));
        headers.push(plain("webhook-id", self.id.into()));
        headers.push(plain("webhook-timestamp", timestamp.to_string().into()));
        let signature = signature_header(self.secrets, self.id, timestamp, self.body.as_bytes());
        headers.push(plain("webhook-signature", signature.into()));
        if let Some(correlation_id) = self.correlation_id {
            headers.push(plain("x-correlation-id", correlation_id.into()));
        }
        headers.extend(self.headers.iter().map(|(name, value)| plain(name, value.as_str().into())));
        if let Some(value) = self.auth.and_then(authorization) {
            headers.push(Header { name: "authorization", value: value.into(), sensitive: true });
        }
        let (url, body, auth, guarded) = (self.url, self.body, self.auth, self.guarded);
        Request { method: Method::Post, url, headers, body, auth, signed_at: timestamp, at_ms: now_ms, guarded }
    }
}

/// The `Authorization` of credentials that need nothing fetched.
pub(crate) fn authorization(auth: &TargetAuth) -> Option<String> {
    match auth {
        TargetAuth::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        )),
        TargetAuth::Bearer { token } => Some(format!("Bearer {token}")),
        TargetAuth::OAuth2(_) | TargetAuth::Mtls(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WebhookConfig;
    use crate::policy::signing::sign;

    fn webhook(auth: Option<TargetAuth>) -> Webhook {
        let config = WebhookConfig {
            url: "https://example.com/hook".into(),
            subscriptions: vec!["ping".into()],
            headers: BTreeMap::from([("x-api-key".to_owned(), "k".to_owned())]),
            auth,
            ..Default::default()
        };
        Webhook::new("wh1".into(), config, Secret::from_key(&[3; 32]), 0)
    }

    fn ping() -> Delivery {
        Delivery { body: "{}".into(), ..Delivery::example() }
    }

    fn header<'a>(request: &'a Request<'_>, name: &str) -> Option<&'a str> {
        request.headers.iter().find(|h| h.name == name).map(|h| h.value.as_ref())
    }

    #[test]
    fn a_delivery_is_a_signed_post_with_the_webhooks_headers_and_credentials() {
        let webhook = webhook(Some(TargetAuth::Bearer { token: "t0k3n".into() }));
        let delivery = Delivery { correlation_id: Some("corr".into()), ..ping() };
        let request = super::delivery(&delivery, &webhook, 1_700_000_000_999).unwrap();
        assert_eq!((request.url, request.body), ("https://example.com/hook", "{}"));
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(header(&request, "webhook-id"), Some("dlv_0123456789abcdef0123456789abcdef"));
        assert_eq!(header(&request, "webhook-timestamp"), Some("1700000000"));
        let expected = sign(&webhook.secret, delivery.id.as_str(), 1_700_000_000, b"{}");
        assert_eq!(header(&request, "webhook-signature"), Some(expected.as_str()));
        assert_eq!(header(&request, "x-correlation-id"), Some("corr"));
        assert_eq!(header(&request, "x-api-key"), Some("k"));
        assert_eq!(header(&request, "authorization"), Some("Bearer t0k3n"));
        let printed = format!("{request:?}");
        assert!(printed.contains("authorization: ***") && !printed.contains("t0k3n"), "{printed}");
        assert_eq!((request.signature(), request.signed_at), (Some(expected.as_str()), 1_700_000_000));
    }

    #[test]
    fn callbacks_go_to_their_url_with_callback_auth_and_no_configured_headers() {
        let mut webhook = webhook(Some(TargetAuth::Bearer { token: "target".into() }));
        webhook.config.failure_callback_url = Some("https://example.com/failed".into());
        webhook.config.callback_auth = Some(TargetAuth::Basic { username: "user".into(), password: "pass".into() });
        let delivery = ping();
        let failure = crate::callback::failure(&delivery, &webhook, 3, None).unwrap();
        let request = super::delivery(&failure, &webhook, 0).unwrap();
        assert_eq!(request.url, "https://example.com/failed");
        assert_eq!(header(&request, "authorization"), Some("Basic dXNlcjpwYXNz"));
        assert_eq!(header(&request, "webhook-id"), Some(failure.id.as_str()));
        assert_eq!(header(&request, "x-api-key"), None);
        webhook.config.failure_callback_url = None;
        assert_eq!(super::delivery(&failure, &webhook, 0), None, "the URL was removed meanwhile");
        let oauth2 = TargetAuth::OAuth2(crate::model::OAuth2Client {
            token_url: Some("https://idp.example/token".into()),
            issuer: None,
            client_id: "c".into(),
            client_secret: "s".into(),
            scope: None,
            audience: None,
        });
        webhook.config.auth = Some(oauth2.clone());
        let request = super::delivery(&delivery, &webhook, 0).unwrap();
        assert_eq!((header(&request, "authorization"), request.auth), (None, Some(&oauth2)), "the sender fetches it");
    }
}
