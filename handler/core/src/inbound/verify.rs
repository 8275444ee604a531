//! Verifying a provider's request against a source's scheme (see the module's overview in `inbound`).

use super::received::MAX_TYPE_CHARS;
use crate::model::Secret;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Digest;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};

/// How a source's requests are verified.
#[derive(Clone, PartialEq, Eq)]
pub enum Verify {
    Stripe { secrets: Vec<String> },
    Github { secrets: Vec<String> },
    StandardWebhooks { secrets: Vec<Secret> },
    Hmac(HmacScheme),
    Basic { username: String, passwords: Vec<String>, event_type: Locator, event_id: Locator },
    ApiKey { header: String, keys: Vec<String>, event_type: Locator, event_id: Locator },
}

impl std::fmt::Debug for Verify {
    // Secrets are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl Verify {
    /// Its `type`, as the API writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            Verify::Stripe { .. } => "stripe",
            Verify::Github { .. } => "github",
            Verify::StandardWebhooks { .. } => "standard-webhooks",
            Verify::Hmac(_) => "hmac",
            Verify::Basic { .. } => "basic",
            Verify::ApiKey { .. } => "api-key",
        }
    }
}

/// A provider's own HMAC scheme.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacScheme {
    pub header: String,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// What comes before the signature in the header (`sha256=`).
    pub prefix: Option<String>,
    /// A header holding the time the provider signed at (Unix seconds), signed with the body.
    pub timestamp_header: Option<String>,
    pub secrets: Vec<String>,
    pub event_type: Locator,
    pub event_id: Locator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Hex,
    Base64,
}

/// Where a request says something: a header, or a path in its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    Header(String),
    Body(Vec<String>),
}

/// What a verified request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub event_type: String,
    /// The provider's id of the event: what a repeat is recognised by.
    pub event_id: Option<String>,
    /// Whether the id can be trusted as the request's: a signature covers it, or a shared credential vouches for
    /// the whole request (GitHub's `X-GitHub-Delivery` and a header an HMAC source names are not signed): a
    /// repeat of an untrusted one is recognised by its body instead.
    pub id_signed: bool,
}

/// Why a request is refused. Said in the log and the metrics, never to the caller (who gets a generic 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the {0} header is missing")]
    MissingHeader(String),
    #[error("the {0} header is malformed")]
    Malformed(String),
    #[error("no signature matches any of the source's secrets")]
    BadSignature,
    #[error("the credential matches none of the source's")]
    BadCredential,
    #[error("signed {age} s from now, outside the tolerance of {tolerance} s")]
    Stale { age: i64, tolerance: i64 },
    #[error("the event type is missing ({0})")]
    NoEventType(String),
    #[error("the event type is not 1 to {MAX_TYPE_CHARS} printable ASCII characters")]
    BadEventType,
}

impl Refused {
    /// A short name of the reason, for metrics' labels.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::MissingHeader(_) => "missing-header",
            Refused::Malformed(_) => "malformed",
            Refused::BadSignature => "bad-signature",
            Refused::BadCredential => "bad-credential",
            Refused::Stale { .. } => "stale",
            Refused::NoEventType(_) => "no-event-type",
            Refused::BadEventType => "bad-event-type",
        }
    }
}

/// The most signatures one request may carry (several secrets, several versions).
const MAX_SIGNATURES: usize = 8;

/// Verifies a request (its headers by lower-case name, its exact raw body) at `now` (Unix seconds), signatures
/// with a timestamp no further than `tolerance` seconds from it; which event it is.
pub fn verify(
    scheme: &Verify,
    tolerance: i64,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<Verified, Refused> {
    let required = |name: &str| header(name).ok_or_else(|| Refused::MissingHeader(name.to_owned()));
    let fresh = |signed_at: i64| match now.abs_diff(signed_at) <= tolerance.unsigned_abs() {
        true => Ok(()),
        false => Err(Refused::Stale { age: now.saturating_sub(signed_at), tolerance }),
    };
    match scheme {
        Verify::Stripe { secrets } => {
            let value = required("stripe-signature")?;
            let malformed = || Refused::Malformed("stripe-signature".to_owned());
            let mut signed_at = None;
            let mut signatures = Vec::new();
            for part in value.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", t)) => signed_at = Some(t.parse::<i64>().map_err(|_| malformed())?),
                    Some(("v1", hex)) if signatures.len() < MAX_SIGNATURES => signatures.extend(decode_hex(hex)),
                    _ => {}
                }
            }
            let signed_at = signed_at.ok_or_else(malformed)?;
            let signed = [signed_at.to_string().as_bytes(), b".", body].concat();
            matches_any(secrets.iter().map(|s| s.as_bytes()), Algorithm::Sha256, &signed, &signatures)?;
            fresh(signed_at)?;
            from_body(body, &["type"], &["id"])
        }
        Verify::Github { secrets } => {
            let value = required("x-hub-signature-256")?;
            let signature = value
                .strip_prefix("sha256=")
                .and_then(decode_hex)
                .ok_or_else(|| Refused::Malformed("x-hub-signature-256".to_owned()))?;
            matches_any(secrets.iter().map(|s| s.as_bytes()), Algorithm::Sha256, body, &[signature])?;
            let event_type = checked_type(required("x-github-event")?)?;
            Ok(Verified { event_type, event_id: header("x-github-delivery"), id_signed: false })
        }
        Verify::StandardWebhooks { secrets } => {
            let (id, timestamp) = (required("webhook-id")?, required("webhook-timestamp")?);
            let signed_at = timestamp.parse::<i64>().map_err(|_| Refused::Malformed("webhook-timestamp".to_owned()))?;
            let signatures: Vec<Vec<u8>> = required("webhook-signature")?
                .split(' ')
                .filter_map(|s| s.strip_prefix("v1,"))
                .take(MAX_SIGNATURES)
                .filter_map(|s| BASE64.decode(s).ok())
                .collect();
            let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
            let keys: Vec<Vec<u8>> = secrets.iter().map(|s| s.key().to_vec()).collect();
            matches_any(keys.iter().map(Vec::as_slice), Algorithm::Sha256, &signed, &signatures)?;
            fresh(signed_at)?;
            let verified = from_body(body, &["type"], &[]).or_else(|_| from_body(body, &["name"], &[]))?;
            Ok(Verified { event_id: Some(id), id_signed: true, ..verified })
        }
        Verify::Hmac(scheme) => {
            let name = scheme.header.to_ascii_lowercase();
            let value = required(&name)?;
            let text = match &scheme.prefix {
                Some(prefix) => value.strip_prefix(prefix.as_str()).ok_or_else(|| Refused::Malformed(name.clone()))?,
                None => value.as_str(),
            };
            let signature = match scheme.encoding {
                Encoding::Hex => decode_hex(text.trim()),
                Encoding::Base64 => BASE64.decode(text.trim()).ok(),
            }
            .ok_or_else(|| Refused::Malformed(name.clone()))?;
            let (signed, signed_at) = match &scheme.timestamp_header {
                None => (body.to_vec(), None),
                Some(timestamp_header) => {
                    let timestamp = required(&timestamp_header.to_ascii_lowercase())?;
                    let at = timestamp.parse::<i64>().map_err(|_| Refused::Malformed(timestamp_header.clone()))?;
                    ([timestamp.as_bytes(), b".", body].concat(), Some(at))
                }
            };
            matches_any(scheme.secrets.iter().map(|s| s.as_bytes()), scheme.algorithm, &signed, &[signature])?;
            signed_at.map_or(Ok(()), fresh)?;
            locate(&scheme.event_type, &scheme.event_id, header, body)
        }
        Verify::Basic { username, passwords, event_type, event_id } => {
            let value = required("authorization")?;
            // The scheme's name is case-insensitive (RFC 9110).
            let given = value
                .trim()
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
                .and_then(|(_, credentials)| BASE64.decode(credentials.trim()).ok())
                .ok_or_else(|| Refused::Malformed("authorization".to_owned()))?;
            let expected = passwords.iter().map(|password| format!("{username}:{password}"));
            if !bool::from(any_equal(expected, &given)) {
                return Err(Refused::BadCredential);
            }
            // A shared credential vouches for the whole request (whoever could change the id holds it).
            locate(event_type, event_id, header, body).map(|verified| Verified { id_signed: true, ..verified })
        }
        Verify::ApiKey { header: name, keys, event_type, event_id } => {
            let given = required(&name.to_ascii_lowercase())?;
            if !bool::from(any_equal(keys.iter(), given.as_bytes())) {
                return Err(Refused::BadCredential);
            }
            locate(event_type, event_id, header, body).map(|verified| Verified { id_signed: true, ..verified })
        }
    }
}

/// Whether one of `signatures` is the HMAC of `signed` with one of `keys`, compared in constant time (every
/// pair is compared: how many match does not change the time).
fn matches_any<'a>(
    keys: impl Iterator<Item = &'a [u8]>,
    algorithm: Algorithm,
    signed: &[u8],
    signatures: &[Vec<u8>],
) -> Result<(), Refused> {
    let mut found = Choice::from(0);
    for key in keys {
        let expected = mac(algorithm, key, signed);
        for signature in signatures {
            found |= expected.ct_eq(signature.as_slice());
        }
    }
    bool::from(found).then_some(()).ok_or(Refused::BadSignature)
}

/// Whether `given` is one of `expected`, by their SHA-256 digests compared in constant time: neither the
/// credential's length nor which one matched shows in the time taken.
fn any_equal<T: AsRef<[u8]>>(expected: impl Iterator<Item = T>, given: &[u8]) -> Choice {
    let given = Sha256::digest(given);
    expected.fold(Choice::from(0), |found, candidate| found | Sha256::digest(candidate.as_ref()).ct_eq(&given))
}

fn mac(algorithm: Algorithm, key: &[u8], signed: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` never fails for it.
    match algorithm {
        Algorithm::Sha256 => <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(signed);
                mac.finalize().into_bytes().to_vec()
            })
            .unwrap_or_default(),
        Algorithm::Sha512 => <Hmac<Sha512> as Mac>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(signed);
                mac.finalize().into_bytes().to_vec()
            })
            .unwrap_or_default(),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// The event type and id at `event_type` and `event_id`.
fn locate(
    event_type: &Locator,
    event_id: &Locator,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Verified, Refused> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let find = |locator: &Locator| match locator {
        Locator::Header(name) => header(&name.to_ascii_lowercase()),
        Locator::Body(path) => path
            .iter()
            .try_fold(json.as_ref()?, |value, key| value.get(key))
            .and_then(|value| value.as_str().map(str::to_owned).or_else(|| value.as_i64().map(|n| n.to_string()))),
    };
    let described = |locator: &Locator| match locator {
        Locator::Header(name) => format!("the {name} header"),
        Locator::Body(path) => format!("the body's {}", path.join(".")),
    };
    let found =
        find(event_type).filter(|t| !t.is_empty()).ok_or_else(|| Refused::NoEventType(described(event_type)))?;
    // Only the body is signed: an id read from a header is not.
    let id_signed = matches!(event_id, Locator::Body(_));
    Ok(Verified { event_type: checked_type(found)?, event_id: find(event_id), id_signed })
}

/// An event type that can name an event: printable ASCII, not too long.
fn checked_type(event_type: String) -> Result<String, Refused> {
    match super::received::valid_event_type(&event_type) {
        true => Ok(event_type),
        false => Err(Refused::BadEventType),
    }
}

fn from_body(body: &[u8], event_type: &[&str], event_id: &[&str]) -> Result<Verified, Refused> {
    let path = |keys: &[&str]| Locator::Body(keys.iter().map(|k| k.to_string()).collect());
    let no_header = |_: &str| None;
    let id = if event_id.is_empty() { Locator::Header(String::new()) } else { path(event_id) };
    locate(&path(event_type), &id, &no_header, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
        move |name: &str| map.get(name).cloned()
    }

    const BODY: &[u8] = br#"{"id":"evt_1","type":"customer.updated"}"#;

    #[test]
    fn github_s_own_example_verifies_and_a_changed_byte_does_not() {
        // The example of GitHub's documentation ("Validating webhook deliveries").
        let scheme = Verify::Github { secrets: vec!["It's a Secret to Everybody".into()] };
        let signed = headers(&[
            ("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
            ("X-GitHub-Event", "ping"),
            ("X-GitHub-Delivery", "d-1"),
        ]);
        let verified = verify(&scheme, 300, &signed, b"Hello, World!", 0).unwrap();
        assert_eq!(verified, Verified { event_type: "ping".into(), event_id: Some("d-1".into()), id_signed: false });
        assert_eq!(verify(&scheme, 300, &signed, b"Hello, World?", 0), Err(Refused::BadSignature));
        let none = headers(&[("X-GitHub-Event", "ping")]);
        assert_eq!(
            verify(&scheme, 300, &none, b"Hello, World!", 0),
            Err(Refused::MissingHeader("x-hub-signature-256".into()))
        );
    }

    #[test]
    fn stripe_takes_any_v1_signature_within_the_tolerance_and_the_old_secret_during_a_rotation() {
        // Computed with Python's `hmac` module: HMAC-SHA256 of "1733300000.{body}" with the secret.
        let signature = "31c40b3305bcb3ddf3e57d19a441d5d7e2560d6bc16a5b27d7e635c87a250472";
        let header = format!("t=1733300000,v1={},v1={signature},v0=abc", "00".repeat(32));
        let signed = headers(&[("Stripe-Signature", header.as_str())]);
        let rotated = Verify::Stripe { secrets: vec!["whsec_new".into(), "whsec_test_secret".into()] };
        let verified = verify(&rotated, 300, &signed, BODY, 1733300100).unwrap();
        assert_eq!(
            verified,
            Verified { event_type: "customer.updated".into(), event_id: Some("evt_1".into()), id_signed: true }
        );
        assert_eq!(verify(&rotated, 300, &signed, BODY, 1733300301), Err(Refused::Stale { age: 301, tolerance: 300 }));
        let wrong = Verify::Stripe { secrets: vec!["whsec_other".into()] };
        assert_eq!(verify(&wrong, 300, &signed, BODY, 1733300100), Err(Refused::BadSignature));
        let malformed = headers(&[("Stripe-Signature", "v1=zz")]);
        assert_eq!(verify(&rotated, 300, &malformed, BODY, 0), Err(Refused::Malformed("stripe-signature".into())));
    }

    #[test]
    fn standard_webhooks_verifies_what_this_dispatcher_signs() {
        // The example of the Standard Webhooks specification, as `policy::signing` signs it.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = crate::policy::signing::sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let signed = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", &format!("v1,bm90IGl0 {signature}")),
        ]);
        let scheme = Verify::StandardWebhooks { secrets: vec![secret] };
        // The example's body has no `type` nor `name`: verified, then refused for what it does not say.
        assert_eq!(
            verify(&scheme, 300, &signed, body, 1614265330),
            Err(Refused::NoEventType("the body's name".into()))
        );
        let named = br#"{"name":"ping","payload":{}}"#;
        let resigned = crate::policy::signing::sign(
            &Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
            "m",
            10,
            named,
        );
        let signed =
            headers(&[("webhook-id", "m"), ("webhook-timestamp", "10"), ("webhook-signature", resigned.as_str())]);
        let verified = verify(&scheme, 300, &signed, named, 10).unwrap();
        assert_eq!(verified, Verified { event_type: "ping".into(), event_id: Some("m".into()), id_signed: true });
    }

    #[test]
    fn a_provider_s_own_hmac_scheme_and_shared_credentials() {
        // Computed with Python's `hmac` module: HMAC-SHA512 of "1733300000.{body}" with "k3y", in base64.
        let signature = "5AmMcv4oj4RcBwcT+5VIG78UfyTDcZw/foqnD0aHcXZS2hNpuFscQc2Lop1+A5rUXBbCe2sDWi7sJ5dH1kWg4g==";
        let scheme = Verify::Hmac(HmacScheme {
            header: "X-Signature".into(),
            algorithm: Algorithm::Sha512,
            encoding: Encoding::Base64,
            prefix: Some("sha512=".into()),
            timestamp_header: Some("X-Timestamp".into()),
            secrets: vec!["k3y".into()],
            event_type: Locator::Header("X-Event".into()),
            event_id: Locator::Body(vec!["id".into()]),
        });
        let value = format!("sha512={signature}");
        let signed = headers(&[("X-Signature", value.as_str()), ("X-Timestamp", "1733300000"), ("X-Event", "paid")]);
        let verified = verify(&scheme, 300, &signed, BODY, 1733300000).unwrap();
        assert_eq!(verified, Verified { event_type: "paid".into(), event_id: Some("evt_1".into()), id_signed: true });
        let untyped = headers(&[("X-Signature", value.as_str()), ("X-Timestamp", "1733300000")]);
        assert_eq!(
            verify(&scheme, 300, &untyped, BODY, 1733300000),
            Err(Refused::NoEventType("the X-Event header".into()))
        );

        let (event_type, event_id) = (Locator::Body(vec!["type".into()]), Locator::Body(vec!["id".into()]));
        let basic =
            Verify::Basic { username: "u".into(), passwords: vec!["p1".into(), "p2".into()], event_type, event_id };
        let auth = format!("Basic {}", BASE64.encode("u:p2"));
        assert!(verify(&basic, 300, &headers(&[("Authorization", auth.as_str())]), BODY, 0).is_ok());
        let wrong = format!("Basic {}", BASE64.encode("u:p3"));
        assert_eq!(
            verify(&basic, 300, &headers(&[("Authorization", wrong.as_str())]), BODY, 0),
            Err(Refused::BadCredential)
        );
        assert_eq!(format!("{basic:?}"), "basic", "no secret in debug output");
    }

    #[test]
    fn shared_credentials_compare_whole_and_vouch_for_the_whole_request() {
        let (event_type, event_id) = (Locator::Body(vec!["type".into()]), Locator::Body(vec!["id".into()]));
        let keyed = Verify::ApiKey {
            header: "X-Api-Key".into(),
            keys: vec!["k-old".into(), "k-new".into()],
            event_type,
            event_id,
        };
        let verified = verify(&keyed, 300, &headers(&[("X-Api-Key", "k-new")]), BODY, 0).unwrap();
        assert_eq!((verified.event_type.as_str(), verified.id_signed), ("customer.updated", true));
        for wrong in ["k-ne", "k-new ", ""] {
            assert_eq!(
                verify(&keyed, 300, &headers(&[("X-Api-Key", wrong)]), BODY, 0),
                Err(Refused::BadCredential),
                "{wrong:?}"
            );
        }
        let (event_type, event_id) = (Locator::Body(vec!["type".into()]), Locator::Body(vec!["id".into()]));
        let basic = Verify::Basic { username: "u".into(), passwords: vec!["p".into()], event_type, event_id };
        let lower = format!("basic   {}", BASE64.encode("u:p"));
        assert!(
            verify(&basic, 300, &headers(&[("Authorization", lower.as_str())]), BODY, 0).is_ok(),
            "the scheme's case"
        );
        let bearer = format!("Bearer {}", BASE64.encode("u:p"));
        let refused = verify(&basic, 300, &headers(&[("Authorization", bearer.as_str())]), BODY, 0);
        assert_eq!(refused, Err(Refused::Malformed("authorization".into())));
    }

    #[test]
    fn odd_headers_are_refused_without_a_panic() {
        let scheme = Verify::Stripe { secrets: vec!["whsec_test_secret".into()] };
        let signature = "31c40b3305bcb3ddf3e57d19a441d5d7e2560d6bc16a5b27d7e635c87a250472";
        let no_time = format!("v1={signature}");
        assert_eq!(
            verify(&scheme, 300, &headers(&[("Stripe-Signature", no_time.as_str())]), BODY, 0),
            Err(Refused::Malformed("stripe-signature".into()))
        );
        let far = format!("t=-9223372036854775808,v1={signature}");
        assert!(verify(&scheme, 300, &headers(&[("Stripe-Signature", far.as_str())]), BODY, i64::MAX).is_err());
        let plus = format!("t=1733300000,v1=+{}", &signature[1..]);
        assert_eq!(
            verify(&scheme, 300, &headers(&[("Stripe-Signature", plus.as_str())]), BODY, 1733300000),
            Err(Refused::BadSignature),
            "not hex"
        );
        let github = Verify::Github { secrets: vec!["It's a Secret to Everybody".into()] };
        let signed =
            [("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")];
        assert_eq!(
            verify(&github, 300, &headers(&signed), b"Hello, World!", 0),
            Err(Refused::MissingHeader("x-github-event".into()))
        );
        let long = "x".repeat(MAX_TYPE_CHARS + 1);
        let typed = [signed[0], ("X-GitHub-Event", long.as_str())];
        assert_eq!(verify(&github, 300, &headers(&typed), b"Hello, World!", 0), Err(Refused::BadEventType));
    }
}
