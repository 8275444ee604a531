//! A webhook's signing secret, in the Standard Webhooks form `whsec_` + base64 of the key bytes. Signing with it
//! is `policy::signing`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::fmt;

const PREFIX: &str = "whsec_";

/// A signing secret. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret of these key bytes (32 random bytes for a new webhook: the caller draws them).
    pub fn from_key(key: &[u8]) -> Secret {
        Secret(format!("{PREFIX}{}", BASE64.encode(key)))
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

    /// The secret's text, for the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored text, for the store's encryption at rest to seal and open in place.
    pub fn text_mut(&mut self) -> &mut String {
        &mut self.0
    }

    /// The key bytes that sign.
    pub fn key(&self) -> Vec<u8> {
        // Only built by `from_key` and `parse`, so the base64 is valid.
        BASE64.decode(self.0.trim_start_matches(PREFIX)).unwrap_or_default()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_read_back_and_are_never_printed() {
        let secret = Secret::from_key(&[7; 32]);
        assert_eq!(secret.expose().len(), 6 + 44);
        assert_eq!(Secret::parse(secret.expose()), Ok(secret.clone()));
        assert_eq!(secret.key(), [7; 32]);
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(Secret::parse("whsec_YWJj"), Err("must hold 24 to 64 bytes"));
        assert_eq!(Secret::parse("abc"), Err("does not start with whsec_"));
        assert_eq!(Secret::parse("whsec_!!"), Err("is not whsec_ followed by base64"));
    }
}
