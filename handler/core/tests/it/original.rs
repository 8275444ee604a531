//! Every scenario of the original system's integration set-up (`__integrations__/scenarios/original.json`,
//! which the test agent plays end to end too), through the pure core: exact recipients and exact bodies.

use super::webhook;
use dispatcher_core::dispatch::{dispatch, Source};
use dispatcher_core::events::decode;
use dispatcher_core::model::Delivery;
use dispatcher_core::webhooks::WebhookIndex;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const FC: &str = "AAABBB00A00A000B";

fn scenarios() -> Value {
    serde_json::from_str(include_str!("../../../../__integrations__/scenarios/original.json")).unwrap()
}

fn original_webhooks() -> WebhookIndex {
    let set = scenarios();
    let webhooks = set["webhooks"].as_object().unwrap();
    WebhookIndex::new(webhooks.iter().map(|(id, config)| webhook(id, config.clone())).collect())
}

fn source(id: &str) -> Source {
    Source { id: id.to_owned(), correlation_id: None, traceparent: None }
}

fn deliveries(webhooks: &WebhookIndex, event: &Value) -> Vec<Delivery> {
    let event = decode(event.to_string().as_bytes()).unwrap();
    dispatch(&source("message-1"), &event, webhooks)
}

#[test]
fn the_original_integration_scenarios() {
    let webhooks = original_webhooks();
    let set = scenarios();
    for scenario in set["scenarios"].as_array().unwrap() {
        let name = scenario["name"].as_str().unwrap();
        let mut received: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for event in scenario["publish"].as_array().unwrap() {
            for delivery in deliveries(&webhooks, event) {
                let body: Value = serde_json::from_str(&delivery.body).unwrap();
                assert_eq!(body["name"], delivery.event.as_str(), "{name}");
                received.entry(delivery.webhook_id.to_string()).or_default().push(body);
            }
        }
        let expected: BTreeMap<String, Vec<Value>> = serde_json::from_value(scenario["expect"].clone()).unwrap();
        assert_eq!(received, expected, "{name}");
    }
}

#[test]
fn pings_in_bursts_give_one_delivery_each_with_distinct_ids() {
    let webhooks = original_webhooks();
    let set = scenarios();
    let bursts = &set["bursts"];
    let event = decode(bursts["event"].to_string().as_bytes()).unwrap();
    for size in bursts["sizes"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()) {
        let mut ids = std::collections::HashSet::new();
        for i in 0..size {
            let made = dispatch(&source(&format!("burst-{size}-{i}")), &event, &webhooks);
            assert_eq!(made.len(), 1);
            assert_eq!(made[0].webhook_id.as_str(), bursts["to"].as_str().unwrap());
            assert!(ids.insert(made[0].id), "ids repeat within a burst");
        }
        assert_eq!(ids.len() as u64, size);
    }
}

#[test]
fn attributes_that_are_not_payload_fields_and_fields_that_are_not_attributes() {
    // wh4 has an attribute the payload does not carry (kept out of matching).
    let webhooks = WebhookIndex::new(vec![webhook(
        "wh4",
        json!({"subscriptions": ["service:subscribed"], "attributes": {"serviceId": "S", "team": "blue"}}),
    )]);
    let made =
        deliveries(&webhooks, &json!({"name": "service:subscribed", "payload": {"serviceId": "S", "fiscalCode": FC}}));
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].body, json!({"name": "service:subscribed", "payload": {"fiscalCode": FC}}).to_string());
}

#[test]
fn disabled_webhooks_and_webhooks_without_the_required_attribute_receive_nothing() {
    let webhooks = WebhookIndex::new(vec![
        webhook("off", json!({"subscriptions": ["ping"], "attributes": {"name": "a"}, "disabled": true})),
        webhook("nameless", json!({"subscriptions": ["ping", "service:subscribed"]})),
    ]);
    assert!(deliveries(&webhooks, &json!({"name": "ping:all"})).is_empty());
    assert!(deliveries(&webhooks, &json!({"name": "ping", "payload": {"name": "a"}})).is_empty());
    let subscribed = json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "S"}});
    assert!(deliveries(&webhooks, &subscribed).is_empty());
}

#[test]
fn webhooks_sharing_an_attribute_value_get_one_delivery_each() {
    // The original emitted one remapped event per webhook and routed each to every webhook with that value,
    // so two webhooks of one service received two copies each. One each is the contract now.
    let config =
        json!({"subscriptions": ["service:subscribed", "ping"], "attributes": {"serviceId": "S", "name": "n"}});
    let webhooks = WebhookIndex::new(vec![webhook("a", config.clone()), webhook("b", config)]);
    let recipients = |event: Value| -> Vec<String> {
        deliveries(&webhooks, &event).into_iter().map(|d| d.webhook_id.to_string()).collect()
    };
    let profile = json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}});
    assert_eq!(recipients(profile), ["a", "b"]);
    assert_eq!(recipients(json!({"name": "ping:all"})), ["a", "b"]);
}

#[test]
fn delivery_ids_are_stable_and_distinct() {
    let webhooks = original_webhooks();
    let event = json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}});
    let event = decode(event.to_string().as_bytes()).unwrap();
    let first = dispatch(&source("m-1"), &event, &webhooks);
    assert_eq!(first, dispatch(&source("m-1"), &event, &webhooks), "a redelivered message gives the same deliveries");
    assert_ne!(first[0].id, first[1].id, "different webhooks, different ids");
    let other = dispatch(&source("m-2"), &event, &webhooks);
    assert!(first.iter().zip(&other).all(|(a, b)| a.id != b.id), "different messages, different ids");
    let id = first[0].id.as_str();
    assert!(id.starts_with("dlv_") && id.len() == 36 && !id.contains('.'), "{id}");
    let message_half = |d: &Delivery| d.id.as_str()[..20].to_owned();
    assert_eq!(message_half(&first[0]), message_half(&first[1]), "one message, one first half");
    assert_ne!(message_half(&first[0]), message_half(&other[0]), "two messages, two first halves");
    // Pinned: ids are part of the contract with integrators who deduplicate: a release that changed them would
    // make a message redelivered across the upgrade arrive under two ids. Computed independently (Python):
    // "dlv_" + FNV-1a 64 of "m-1" as 16 hex digits + hex of the first 8 bytes of SHA-256 over the parts "dlv2",
    // "m-1", "wh2" and the body wh2 receives, each preceded by its length as u32 LE.
    assert_eq!(id, "dlv_08dba019181b0c9ad6653cd7ac4fe56b");
    let correlated = Source { id: "m-1".into(), correlation_id: Some("c-1".into()), traceparent: None };
    let with_correlation = dispatch(&correlated, &event, &webhooks);
    assert_eq!(with_correlation[0].id, first[0].id, "the correlation id is not part of the id");
    assert_eq!(with_correlation[0].correlation_id.as_deref(), Some("c-1"));
}
