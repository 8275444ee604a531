//! Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
//! with each of the webhook's valid secrets, space-separated.

use crate::model::Secret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `v1,<base64 signature>` of one message with one secret.
pub fn sign(secret: &Secret, id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length: this never takes the else branch.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&secret.key()) else { return "v1,".to_owned() };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per secret, space-separated (several during a rotation).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets.into_iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
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
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let (new, old) = (Secret::from_key(&[1; 32]), Secret::from_key(&[2; 32]));
        let header = signature_header([&new, &old], "dlv_1", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [sign(&new, "dlv_1", 1, b"{}"), sign(&old, "dlv_1", 1, b"{}")]);
        assert_ne!(parts[0], parts[1]);
    }
}
