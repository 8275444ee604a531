//! How the dispatcher authenticates to a webhook's receiver (`auth`) and to its callback URLs
//! (`callbackAuth`): credentials it holds for the integrator. `Debug` never shows a secret.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Credentials presented to a target. Basic and bearer go in `Authorization` as they are; an `oauth2` token is
/// fetched (and cached) by the sender; an `mtls` certificate is presented in the TLS handshake.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TargetAuth {
    /// HTTP Basic authentication.
    Basic { username: String, password: String },
    /// A bearer token.
    Bearer { token: String },
    /// A bearer token from an OAuth 2.0 token endpoint, by the client credentials grant.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Client),
    /// A TLS client certificate.
    Mtls(ClientCertificate),
}

/// An OAuth 2.0 client of a token endpoint, given as `tokenUrl` or found through OpenID Connect discovery
/// from `issuer`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Client {
    /// The token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub token_url: Option<String>,
    /// An OpenID provider whose `/.well-known/openid-configuration` names the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub issuer: Option<String>,
    pub client_id: String,
    /// Never shown back.
    pub client_secret: String,
    /// Space-separated scopes to ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The resource the token is for, for providers that take an `audience` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// A TLS client certificate and its key, in PEM.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificate {
    /// The certificate chain, leaf first.
    pub certificate: String,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1). Never shown back.
    pub private_key: String,
}

impl TargetAuth {
    /// The `type` it is registered with.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetAuth::Basic { .. } => "basic",
            TargetAuth::Bearer { .. } => "bearer",
            TargetAuth::OAuth2(_) => "oauth2",
            TargetAuth::Mtls(_) => "mtls",
        }
    }

    /// Every secret it holds, to encrypt at rest (and for tests to look for).
    pub fn secrets_mut(&mut self) -> Vec<&mut String> {
        match self {
            TargetAuth::Basic { password, .. } => vec![password],
            TargetAuth::Bearer { token } => vec![token],
            TargetAuth::OAuth2(client) => vec![&mut client.client_secret],
            TargetAuth::Mtls(certificate) => vec![&mut certificate.private_key],
        }
    }
}

impl std::fmt::Debug for TargetAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetAuth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            TargetAuth::Bearer { .. } => f.write_str("Bearer(***)"),
            TargetAuth::OAuth2(client) => write!(f, "OAuth2({client:?})"),
            TargetAuth::Mtls(_) => f.write_str("Mtls(***)"),
        }
    }
}

impl std::fmt::Debug for OAuth2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = self.token_url.as_deref().or(self.issuer.as_deref()).unwrap_or_default();
        write!(f, "{endpoint}, {}, ***", self.client_id)
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_printed() {
        let auth = TargetAuth::Basic { username: "u".into(), password: "s3cret".into() };
        assert_eq!(format!("{auth:?}"), "Basic(u, ***)");
        assert_eq!(format!("{:?}", TargetAuth::Bearer { token: "t0k3n".into() }), "Bearer(***)");
        let client = OAuth2Client {
            token_url: Some("https://idp.example/token".into()),
            issuer: None,
            client_id: "dispatcher".into(),
            client_secret: "s3cret".into(),
            scope: None,
            audience: None,
        };
        assert_eq!(format!("{:?}", TargetAuth::OAuth2(client)), "OAuth2(https://idp.example/token, dispatcher, ***)");
        let mtls = ClientCertificate { certificate: "PEM".into(), private_key: "KEY".into() };
        assert_eq!(format!("{:?}", TargetAuth::Mtls(mtls)), "Mtls(***)");
    }

    #[test]
    fn each_type_serializes_in_the_registration_shape() {
        let json = serde_json::json!({"type": "oauth2", "issuer": "https://idp.example", "clientId": "c",
            "clientSecret": "s", "scope": "deliveries"});
        let auth: TargetAuth = serde_json::from_value(json.clone()).unwrap();
        assert!(matches!(&auth, TargetAuth::OAuth2(c) if c.issuer.as_deref() == Some("https://idp.example")));
        assert_eq!(serde_json::to_value(&auth).unwrap(), json);
        let json = serde_json::json!({"type": "mtls", "certificate": "C", "privateKey": "K"});
        let mut auth: TargetAuth = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&auth).unwrap(), json);
        assert_eq!(auth.secrets_mut(), [&mut "K".to_owned()]);
    }
}
