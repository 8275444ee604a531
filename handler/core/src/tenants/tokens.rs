//! Tenant tokens: `dtk_` + the token's id (16 hex digits) + `_` + 32 random bytes (base64url), so that a
//! presented token names the one record to read, and a leaked one is recognisable (secret scanners match the
//! prefix). Only the SHA-256 of a token is kept; a presented token is compared with it in constant time.

use crate::model::{TenantId, Token};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every token starts with.
pub const PREFIX: &str = "dtk_";

/// How many random bytes a new token takes: 8 for its id, 32 for its secret part.
pub const RANDOM_BYTES: usize = 40;

/// A token as issued: the record to store, and the token, shown once (never in a debug print).
pub struct Issued {
    pub record: Token,
    pub token: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("record", &self.record).field("token", &"<secret>").finish()
    }
}

/// What is asked of a new token.
#[derive(Debug, Clone)]
pub struct Spec {
    pub tenant: TenantId,
    /// The tenant's `created_at_ms` ([`Token::tenant_created_at_ms`]).
    pub tenant_created_at_ms: i64,
    pub name: String,
    pub read_only: bool,
    pub portal: bool,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// A new token from `random` bytes.
pub fn issue(spec: Spec, random: &[u8; RANDOM_BYTES]) -> Issued {
    let id_hex: String = random[..8].iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{PREFIX}{id_hex}_{}", BASE64URL.encode(&random[8..]));
    let record = Token {
        id: format!("tok_{id_hex}"),
        tenant: spec.tenant,
        name: spec.name,
        hash: hash(&token),
        read_only: spec.read_only,
        portal: spec.portal,
        created_at_ms: spec.now_ms,
        expires_at_ms: spec.expires_at_ms,
        tenant_created_at_ms: spec.tenant_created_at_ms,
    };
    Issued { record, token }
}

/// Lower-case hex SHA-256 of a token (on every call with a token: written without a format per byte).
pub fn hash(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0xf)] as char);
    }
    hex
}

/// The id of the token `text` claims to be; `None` when it is not shaped like one of ours.
pub fn claimed_id(text: &str) -> Option<String> {
    let rest = text.strip_prefix(PREFIX)?;
    let (id_hex, secret) = rest.split_at_checked(16)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id_hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then(|| format!("tok_{id_hex}"))
}

/// Why a presented token is refused. The words never quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the bearer token is not a dispatcher token (dtk_...)")]
    Malformed,
    #[error("the bearer token is unknown or revoked")]
    Unknown,
    #[error("the bearer token has expired")]
    Expired,
}

impl Refused {
    /// The reason as a metric's label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Unknown => "unknown",
            Refused::Expired => "expired",
        }
    }
}

/// Checks `presented` against `stored` (the record its id names, if any) at `now_ms`.
pub fn verify(presented: &str, stored: Option<&Token>, now_ms: i64) -> Result<(), Refused> {
    let stored = stored.ok_or(Refused::Unknown)?;
    if !bool::from(hash(presented).as_bytes().ct_eq(stored.hash.as_bytes())) {
        return Err(Refused::Unknown);
    }
    if stored.expires_at_ms <= now_ms {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> Spec {
        Spec {
            tenant: "acme".into(),
            tenant_created_at_ms: 500,
            name: "ci".into(),
            read_only: false,
            portal: false,
            now_ms: 1_000,
            expires_at_ms: 2_000,
        }
    }

    #[test]
    fn a_token_opens_only_the_tenant_it_was_issued_for() {
        use crate::model::{Tenant, TenantConfig};
        let tenant = |created_at_ms| Tenant {
            id: "acme".into(),
            config: TenantConfig { name: "Acme".into(), grants: Default::default(), max_webhooks: 1, disabled: false },
            created_at_ms,
            updated_at_ms: created_at_ms,
        };
        let token = issue(spec(), &[7; RANDOM_BYTES]).record;
        assert!(token.issued_for(&tenant(500)));
        assert!(!token.issued_for(&tenant(900)), "a tenant created again under the same id");
        // Stored before tokens kept their tenant's creation time: issued after its tenant was created.
        let old = Token { tenant_created_at_ms: 0, ..token };
        assert!(old.issued_for(&tenant(500)) && old.issued_for(&tenant(1_000)));
        assert!(!old.issued_for(&tenant(1_001)), "a tenant created after the token");
    }

    #[test]
    fn an_issued_token_names_its_record_and_verifies_until_it_expires() {
        let issued = issue(spec(), &[7; RANDOM_BYTES]);
        assert!(issued.token.starts_with("dtk_0707070707070707_"));
        assert_eq!(issued.record.id, "tok_0707070707070707");
        assert_eq!(claimed_id(&issued.token).as_deref(), Some("tok_0707070707070707"));
        assert!(!issued.record.hash.contains(&issued.token) && issued.record.hash.len() == 64);
        assert_eq!(verify(&issued.token, Some(&issued.record), 1_999), Ok(()));
        assert_eq!(verify(&issued.token, Some(&issued.record), 2_000), Err(Refused::Expired));
        assert_eq!(verify(&issued.token, None, 1_500), Err(Refused::Unknown));
        let mut forged = issued.token.clone();
        forged.pop();
        forged.push(if issued.token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(claimed_id(&forged).as_deref(), Some("tok_0707070707070707"));
        assert_eq!(verify(&forged, Some(&issued.record), 1_500), Err(Refused::Unknown));
    }

    #[test]
    fn only_tokens_shaped_like_ours_claim_an_id() {
        for bad in [
            "",
            "dtk_",
            "Bearer x",
            "dtk_0707070707070707",
            "dtk_070707070707070G_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "dtk_0707070707070707_AAAA",
            "dtk_0707070707070707-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(claimed_id(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn every_issued_token_claims_its_own_id(random in proptest::array::uniform32(any::<u8>()), head in proptest::array::uniform8(any::<u8>())) {
            let mut bytes = [0u8; RANDOM_BYTES];
            bytes[..8].copy_from_slice(&head);
            bytes[8..].copy_from_slice(&random);
            let issued = issue(spec(), &bytes);
            prop_assert_eq!(claimed_id(&issued.token), Some(issued.record.id.clone()));
            prop_assert_eq!(verify(&issued.token, Some(&issued.record), 1_000), Ok(()));
        }
    }
}
