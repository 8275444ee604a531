//! Decoding the credentials of a registration: `auth` (to the receiver) and `callbackAuth` (to the callback
//! URLs), in the shapes of [`TargetAuth`]. What is wrong is said with its path; a secret is never quoted.

use super::fields::decode_url;
use crate::model::{join, optional_string, ClientCertificate, OAuth2Client, Problem, TargetAuth};
use serde_json::Value;

/// One of the shapes of [`TargetAuth`], at `path` (`auth` or `callbackAuth`). Credentials are never quoted.
pub(crate) fn decode_auth(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> Option<TargetAuth> {
    const EXPECTED: &str = r#"an object whose "type" is "basic", "bearer", "oauth2" or "mtls""#;
    let fields = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            let what = if other.is_string() { "a string" } else { "not an object" };
            problems.push(Problem::new(path, format!("is {what}, expected {EXPECTED}")));
            return None;
        }
    };
    let kind = fields.get("type").and_then(Value::as_str).unwrap_or_default();
    let known: &[&str] = match kind {
        "basic" => &["type", "username", "password"],
        "bearer" => &["type", "token"],
        "oauth2" => &["type", "tokenUrl", "issuer", "clientId", "clientSecret", "scope", "audience"],
        "mtls" => &["type", "certificate", "privateKey"],
        _ => {
            problems.push(Problem::new(join(path, "type"), "must be \"basic\", \"bearer\", \"oauth2\" or \"mtls\""));
            return None;
        }
    };
    for key in fields.keys().filter(|k| !known.contains(&k.as_str())) {
        let message = format!("is not a field of {kind} authentication; its fields: {}", known.join(", "));
        problems.push(Problem::new(join(path, key), message));
    }
    let before = problems.len();
    let mut text = |name: &str| match fields.get(name) {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        _ => {
            problems.push(Problem::new(join(path, name), "is missing or not a non-empty string"));
            String::new()
        }
    };
    let auth = match kind {
        "basic" => TargetAuth::Basic { username: text("username"), password: text("password") },
        "bearer" => TargetAuth::Bearer { token: text("token") },
        "oauth2" => {
            let (client_id, client_secret) = (text("clientId"), text("clientSecret"));
            let scope = optional_string(fields.get("scope"), &join(path, "scope"), problems);
            let audience = optional_string(fields.get("audience"), &join(path, "audience"), problems);
            let endpoint = |name: &str, problems: &mut Vec<Problem>| {
                fields.contains_key(name).then(|| decode_url(fields.get(name), &join(path, name), problems))
            };
            let (token_url, issuer) = (endpoint("tokenUrl", problems), endpoint("issuer", problems));
            if token_url.is_some() == issuer.is_some() {
                problems.push(Problem::new(
                    path,
                    "needs either tokenUrl (the token endpoint) or issuer (an OpenID provider), not both",
                ));
            }
            TargetAuth::OAuth2(OAuth2Client { token_url, issuer, client_id, client_secret, scope, audience })
        }
        _ => {
            let (certificate, private_key) = (text("certificate"), text("privateKey"));
            if !certificate.is_empty() && !certificate.contains("-----BEGIN CERTIFICATE-----") {
                problems.push(Problem::new(
                    join(path, "certificate"),
                    "is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
            let pem_key =
                private_key.find("-----BEGIN").is_some_and(|at| private_key[at..].contains("PRIVATE KEY-----"));
            if !private_key.is_empty() && !pem_key {
                // The key is a secret: say what is wrong without quoting it.
                problems.push(Problem::new(
                    join(path, "privateKey"),
                    "is not a PEM private key (-----BEGIN PRIVATE KEY-----)",
                ));
            }
            TargetAuth::Mtls(ClientCertificate { certificate, private_key })
        }
    };
    (problems.len() == before).then_some(auth)
}

/// What [`decode_auth`] checks beyond the derived schema of one variant of `TargetAuth`: its text fields are
/// not empty, PEM where they hold PEM, and an oauth2 client names its token endpoint or its issuer, not both.
pub(super) fn constrain_schema(variant: &mut Value) {
    let oauth2 = variant.pointer("/properties/clientId").is_some();
    let Some(Value::Object(properties)) = variant.get_mut("properties") else { return };
    for name in ["username", "password", "token", "clientId", "clientSecret", "certificate", "privateKey"] {
        if let Some(property) = properties.get_mut(name) {
            property["minLength"] = Value::from(1);
        }
    }
    if let Some(certificate) = properties.get_mut("certificate") {
        certificate["pattern"] = Value::from("-----BEGIN CERTIFICATE-----");
    }
    if let Some(key) = properties.get_mut("privateKey") {
        key["pattern"] = Value::from("-----BEGIN[\\s\\S]*PRIVATE KEY-----");
    }
    if oauth2 {
        for name in ["tokenUrl", "issuer"] {
            if let Some(endpoint) = properties.get_mut(name) {
                endpoint["type"] = Value::from("string");
            }
        }
        variant["oneOf"] = serde_json::json!([{"required": ["tokenUrl"], "not": {"required": ["issuer"]}},
            {"required": ["issuer"], "not": {"required": ["tokenUrl"]}}]);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{TargetAuth, WebhookConfig};
    use crate::webhooks::registration::tests::problems;
    use serde_json::json;
    #[test]
    fn every_auth_type_decodes_at_auth_and_callback_auth_and_reports_without_quoting_secrets() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        let body = json!({"url": "https://a.example", "subscriptions": ["ping"],
            "auth": {"type": "oauth2", "issuer": "https://idp.example", "clientId": "c", "clientSecret": "s3cret", "scope": "a b"},
            "callbackUrl": "https://a.example/done", "callbackAuth": {"type": "mtls", "certificate": pem, "privateKey": key},
            "failWhen": {"errors": [{"exists": true}]}});
        let config = WebhookConfig::decode(&body).unwrap();
        let Some(TargetAuth::OAuth2(client)) = &config.auth else { panic!("{:?}", config.auth) };
        assert_eq!((client.issuer.as_deref(), client.token_url.as_deref()), (Some("https://idp.example"), None));
        assert_eq!(client.scope.as_deref(), Some("a b"));
        assert!(matches!(&config.callback_auth, Some(TargetAuth::Mtls(c)) if c.private_key == key));
        assert_eq!(config.callback_url.as_deref(), Some("https://a.example/done"));
        assert!(config.fail_when.as_ref().unwrap().matches(r#"{"errors": [{"message": "no"}]}"#));
        assert_eq!(serde_json::to_value(&config).unwrap()["callbackAuth"]["privateKey"], key);

        let bad = json!({"url": "https://a.example", "subscriptions": [],
            "auth": {"type": "oauth2", "tokenUrl": "https://idp.example/token", "issuer": "https://idp.example",
                "clientId": "c", "clientSecret": "", "scope": 1, "grant": "password"},
            "callbackAuth": {"type": "mtls", "certificate": "not pem", "privateKey": "s3cret-key"},
            "failWhen": "errors"});
        let reported = problems(bad);
        assert_eq!(reported, [
            "auth.grant: is not a field of oauth2 authentication; its fields: type, tokenUrl, issuer, clientId, clientSecret, scope, audience",
            "auth.clientSecret: is missing or not a non-empty string",
            "auth.scope: 1 is a number, expected a string",
            "auth: needs either tokenUrl (the token endpoint) or issuer (an OpenID provider), not both",
            "callbackAuth.certificate: is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
            "callbackAuth.privateKey: is not a PEM private key (-----BEGIN PRIVATE KEY-----)",
            "failWhen: is not an event pattern: an object naming the fields to match, e.g. {\"payload\": {\"fiscalCode\": [{\"prefix\": \"AAA\"}]}}",
        ]);
        assert!(!reported.concat().contains("s3cret"));
        let neither = json!({"url": "https://a.example", "subscriptions": [], "auth": {"type": "oauth2", "clientId": "c", "clientSecret": "s"}});
        assert_eq!(
            problems(neither),
            ["auth: needs either tokenUrl (the token endpoint) or issuer (an OpenID provider), not both"]
        );
    }
}
