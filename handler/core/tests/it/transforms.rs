//! Webhooks' transforms in routing: each webhook gets the body its transform makes; one whose transform makes
//! nothing is kept out (filtered), one whose transform fails is dead at once with the error; ids stay
//! deterministic.

use crate::webhook;
use dispatcher_core::dispatch::{route, Source};
use dispatcher_core::events::decode;
use dispatcher_core::model::Status;
use dispatcher_core::webhooks::WebhookIndex;
use serde_json::{json, Value};

const FC: &str = "AAABBB00A00A000B";

fn source() -> Source {
    Source { id: "evt-1".to_owned(), correlation_id: Some("corr-9".to_owned()), traceparent: None }
}

fn index() -> WebhookIndex {
    let hook = |id: &str, service: &str, transform: Option<&str>| {
        let mut config = json!({"subscriptions": ["service:subscribed"], "attributes": {"serviceId": service}});
        if let Some(transform) = transform {
            config["transform"] = Value::from(transform);
        }
        webhook(id, config)
    };
    WebhookIndex::new(vec![
        hook("plain", "S1", None),
        hook(
            "reshaped",
            "S2",
            Some("#{ type: body.name, customer: #{ fiscalCode: body.payload.fiscalCode }, service: attributes.serviceId, event: eventId, correlation: correlationId }"),
        ),
        hook("uninterested", "S3", Some("if body.payload.fiscalCode.starts_with(\"ZZZ\") { body } else { () }")),
        hook("failing", "S4", Some("if body.name == \"service:subscribed\" { throw \"no customer record\" } body")),
        hook("looping", "S5", Some("loop { } body")),
    ])
}

#[test]
fn each_webhook_gets_what_its_transform_makes_or_nothing() {
    let event = decode(
        json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let routed = route(&source(), &event, &index());
    let sent: Vec<(String, String)> =
        routed.deliveries.iter().map(|d| (d.webhook_id.to_string(), d.body.clone())).collect();
    assert_eq!(
        sent,
        [
            ("plain".to_owned(), format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{FC}"}}}}"#)),
            (
                "reshaped".to_owned(),
                format!(
                    r#"{{"correlation":"corr-9","customer":{{"fiscalCode":"{FC}"}},"event":"evt-1","service":"S2","type":"service:subscribed"}}"#
                )
            ),
        ]
    );
    let unsent: Vec<(String, Status, Option<String>)> =
        routed.unsent.iter().map(|u| (u.delivery.webhook_id.to_string(), u.status, u.reason.clone())).collect();
    assert_eq!(unsent[0], ("uninterested".to_owned(), Status::Filtered, None));
    assert_eq!(unsent[1].0, "failing");
    assert_eq!(unsent[1].1, Status::Dead);
    assert!(
        unsent[1].2.as_deref().unwrap().starts_with("transform failed: Runtime error: no customer record (line 1"),
        "{unsent:?}"
    );
    assert_eq!(unsent[2].0, "looping");
    let looped = unsent[2].2.as_deref().unwrap();
    assert!(looped.contains("Too many operations") || looped.contains("longer than 40 ms"), "{unsent:?}");
    assert_eq!(unsent.len(), 3);
    assert!(
        routed.unsent.iter().all(|u| u.delivery.body.starts_with(r#"{"name":"service:subscribed""#)),
        "an unsent delivery keeps the body it would have had"
    );
    // Deterministic: the same deliveries with the same ids, the same ones kept. (Which bound stops the endless
    // loop first, its steps or its processor time, depends on the build's speed: its reason is left out.)
    let again = route(&source(), &event, &index());
    assert_eq!(again.deliveries, routed.deliveries, "routing with transforms is deterministic");
    let kept = |r: &dispatcher_core::dispatch::Routed| -> Vec<(String, Status)> {
        r.unsent.iter().map(|u| (u.delivery.id.to_string(), u.status)).collect()
    };
    assert_eq!(kept(&again), kept(&routed));
}
