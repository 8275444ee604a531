//! Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! with each of the webhook's valid secrets, space-separated.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

const PREFIX: &str = "whsec_";

/// A signing secret: `whsec_` + base64 of the key bytes. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A new secret from 32 random bytes of the operating system's generator.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(Secret(format!("{PREFIX}{}", BASE64.encode(key))))
    }

    /// Reads a secret, checking that it is `whsec_` + base64 of 24 to 64 bytes, as the specification asks.
    pub fn parse(text: &str) -> Result<Secret, &'static str> {
        let key = text.strip_prefix(PREFIX).ok_or("does not start with whsec_")?;
        let bytes = BASE64.decode(key).map_err(|_| "is not whsec_ followed by base64")?;
        if !(24..=64).contains(&bytes.len()) {
            return Err("must hold 24 to 64 bytes");
        }
        Ok(Secret(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        // Only built by `generate` and `parse`, so the base64 is valid.
        BASE64.decode(self.0.trim_start_matches(PREFIX)).unwrap_or_default()
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length: this never takes the else branch.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key()) else { return "v1,".to_owned() };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated (several during a rotation).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets.into_iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specification_example_signs_as_published() {
        // The example of the Standard Webhooks specification (its README, "Signature scheme").
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_distinct_valid_and_never_printed() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(Secret::parse(a.expose()), Ok(a.clone()));
        assert_eq!(a.expose().len(), 6 + 44);
        assert_eq!(format!("{a:?}"), "Secret(***)");
        assert_eq!(Secret::parse("whsec_YWJj"), Err("must hold 24 to 64 bytes"));
        assert_eq!(Secret::parse("abc"), Err("does not start with whsec_"));
        assert_eq!(Secret::parse("whsec_!!"), Err("is not whsec_ followed by base64"));
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let (new, old) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        let header = signature_header([&new, &old], "dlv_1", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [new.sign("dlv_1", 1, b"{}"), old.sign("dlv_1", 1, b"{}")]);
    }
}
