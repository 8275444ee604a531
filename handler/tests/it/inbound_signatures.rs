//! Inbound verification (`dispatcher_core::inbound`) against requests signed by the providers' own libraries,
//! not by ours: the npm `stripe` package (`webhooks.generateTestHeaderString`), `@octokit/webhooks-methods`
//! (`sign`) for GitHub, installed in `__integrations__/providers/` and run by Node, and the `standardwebhooks`
//! crate. Valid requests verify; a changed byte, a wrong secret, a stale timestamp and a missing header do not;
//! the old secret still verifies during a rotation.

use dispatcher_core::inbound::{verify, Refused, Verified, Verify};
use dispatcher_core::model::Secret;
use serde_json::Value;
use std::collections::HashMap;
use std::process::Command;

const BODY: &str = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"customer.updated"}"#;
const NOW: i64 = 1_733_300_000;

/// The headers `provider`'s own library signs `payload` with.
pub fn signed_by(provider: &str, secret: &str, payload: &str, timestamp: Option<i64>) -> HashMap<String, String> {
    let dir = testkit::integrations().join("providers");
    testkit::npm::install(&dir).unwrap();
    let mut command = Command::new("node");
    command.arg("sign.js").args([provider, secret, payload]).current_dir(&dir);
    if let Some(timestamp) = timestamp {
        command.arg(timestamp.to_string());
    }
    let output = command.output().expect("node (Node.js 18 or later) runs the providers' libraries");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let headers: HashMap<String, Value> = serde_json::from_slice(&output.stdout).unwrap();
    headers.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_owned())).collect()
}

fn check(scheme: &Verify, headers: &HashMap<String, String>, body: &str, now: i64) -> Result<Verified, Refused> {
    verify(scheme, 300, &|name| headers.get(name).cloned(), body.as_bytes(), now)
}

#[test]
fn stripe_s_own_signatures_verify_and_nothing_else_does() {
    let headers = signed_by("stripe", "whsec_current", BODY, Some(NOW));
    let first = Verify::Stripe { secrets: vec!["whsec_current".into(), "whsec_next".into()] };
    assert!(check(&first, &headers, BODY, NOW).is_ok(), "either secret of a rotation, first or last");
    let rotating = Verify::Stripe { secrets: vec!["whsec_next".into(), "whsec_current".into()] };
    let verified = check(&rotating, &headers, BODY, NOW + 10).unwrap();
    assert_eq!(verified.event_type, "customer.updated");
    assert_eq!(verified.event_id.as_deref(), Some("evt_1NG8Du2eZvKYlo2CUI79vXWy"));
    let tampered = BODY.replace("updated", "Updated");
    assert_eq!(check(&rotating, &headers, &tampered, NOW), Err(Refused::BadSignature));
    let wrong = Verify::Stripe { secrets: vec!["whsec_other".into()] };
    assert_eq!(check(&wrong, &headers, BODY, NOW), Err(Refused::BadSignature));
    assert!(matches!(check(&rotating, &headers, BODY, NOW + 301), Err(Refused::Stale { .. })));
    assert_eq!(check(&rotating, &HashMap::new(), BODY, NOW), Err(Refused::MissingHeader("stripe-signature".into())));
}

#[test]
fn github_s_own_signatures_verify_and_nothing_else_does() {
    let mut headers = signed_by("github", "gh-secret", BODY, None);
    headers.insert("x-github-event".into(), "issues".into());
    headers.insert("x-github-delivery".into(), "72d3162e-cc78-11e3-81ab-4c9367dc0958".into());
    let rotating = Verify::Github { secrets: vec!["gh-old".into(), "gh-secret".into()] };
    let verified = check(&rotating, &headers, BODY, NOW).unwrap();
    assert_eq!(
        (verified.event_type.as_str(), verified.event_id.as_deref()),
        ("issues", Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"))
    );
    assert_eq!(check(&rotating, &headers, &BODY.replace('1', "2"), NOW), Err(Refused::BadSignature));
    assert_eq!(
        check(&Verify::Github { secrets: vec!["nope".into()] }, &headers, BODY, NOW),
        Err(Refused::BadSignature)
    );
    headers.remove("x-hub-signature-256");
    assert_eq!(check(&rotating, &headers, BODY, NOW), Err(Refused::MissingHeader("x-hub-signature-256".into())));
}

#[test]
fn standard_webhooks_signatures_of_the_reference_crate_verify_and_nothing_else_does() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = r#"{"type":"invoice.paid","data":{}}"#;
    let signature = standardwebhooks::Webhook::new(secret).unwrap().sign("msg_1", NOW, body.as_bytes()).unwrap();
    let headers: HashMap<String, String> =
        [("webhook-id", "msg_1".to_owned()), ("webhook-timestamp", NOW.to_string()), ("webhook-signature", signature)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    let scheme = Verify::StandardWebhooks { secrets: vec![Secret::from_key(&[9; 32]), Secret::parse(secret).unwrap()] };
    let verified = check(&scheme, &headers, body, NOW).unwrap();
    assert_eq!((verified.event_type.as_str(), verified.event_id.as_deref()), ("invoice.paid", Some("msg_1")));
    assert_eq!(check(&scheme, &headers, &body.replace("paid", "PAID"), NOW), Err(Refused::BadSignature));
    assert!(matches!(check(&scheme, &headers, body, NOW - 400), Err(Refused::Stale { .. })));
    let other = Verify::StandardWebhooks { secrets: vec![Secret::from_key(&[7; 32])] };
    assert_eq!(check(&other, &headers, body, NOW), Err(Refused::BadSignature));
    let mut unsigned = headers.clone();
    unsigned.remove("webhook-signature");
    assert_eq!(check(&scheme, &unsigned, body, NOW), Err(Refused::MissingHeader("webhook-signature".into())));
}
