//! Properties of routing and dispatch over random webhooks and events.

use dispatcher_core::dispatch::{dispatch, skipped, Source};
use dispatcher_core::events::{decode, public_events, Event};
use dispatcher_core::model::{Secret, Webhook, WebhookConfig, WebhookId};
use dispatcher_core::webhooks::{receives, WebhookIndex};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

const FISCAL_CODES: [&str; 2] = ["AAABBB00A00A000B", "RSSMRA85T10A562S"];
const NAMES: [&str; 3] = ["wh1", "wh2", "wh3"];
const SERVICES: [&str; 3] = ["S1", "S2", "S3"];
const MODES: [&str; 3] = ["LEGACY", "AUTO", "MANUAL"];

pub fn webhook_strategy() -> impl Strategy<Value = WebhookConfig> {
    (
        proptest::sample::subsequence(vec!["ping", "service:subscribed"], 0..=2),
        proptest::option::of(proptest::sample::select(NAMES.to_vec())),
        proptest::option::of(proptest::sample::select(SERVICES.to_vec())),
        proptest::option::of(proptest::sample::select(vec!["fiscalCode", "team"])),
        any::<bool>(),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(subscriptions, name, service, extra, as_string, disabled)| {
            let mut attributes = BTreeMap::new();
            if let Some(name) = name {
                attributes.insert("name".to_owned(), name.to_owned());
            }
            if let Some(service) = service {
                attributes.insert("serviceId".to_owned(), service.to_owned());
            }
            if let Some(extra) = extra {
                attributes.insert(extra.to_owned(), FISCAL_CODES[0].to_owned());
            }
            let subscriptions = if as_string { json!(subscriptions.join(",")) } else { json!(subscriptions) };
            let body = json!({"url": "https://example.com", "subscriptions": subscriptions, "attributes": attributes, "disabled": disabled});
            WebhookConfig::decode(&body).unwrap()
        })
}

pub fn event_strategy() -> impl Strategy<Value = Event> {
    let fc = proptest::sample::select(FISCAL_CODES.to_vec());
    let mode = proptest::sample::select(MODES.to_vec());
    prop_oneof![
        proptest::sample::select(NAMES.to_vec()).prop_map(|n| json!({"name": "ping", "payload": {"name": n}})),
        (fc.clone(), proptest::sample::select(SERVICES.to_vec()), any::<bool>()).prop_map(|(f, s, reversed)| {
            let mut payload = Map::new();
            let fields = [("fiscalCode", f), ("serviceId", s)];
            for (k, v) in if reversed { [fields[1], fields[0]] } else { fields } {
                payload.insert(k.to_owned(), json!(v));
            }
            json!({"name": "service:subscribed", "payload": payload})
        }),
        Just(json!({"name": "ping:all"})),
        (fc.clone(), mode.clone()).prop_map(
            |(f, m)| json!({"name": "profile:completed", "payload": {"fiscalCode": f, "servicePreferencesMode": m}})
        ),
        (fc, mode.clone(), mode).prop_map(|(f, m, o)| json!({"name": "profile:service-preferences-changed",
            "payload": {"fiscalCode": f, "servicePreferencesMode": m, "oldServicePreferencesMode": o, "internal": 1}})),
    ]
    .prop_map(|v: Value| decode(v.to_string().as_bytes()).unwrap())
}

fn source(id: &str) -> Source {
    Source { id: id.to_owned(), correlation_id: None, traceparent: None }
}

/// The catalog's own name for `event` (a `&'static str`, as the mapping yields them).
fn catalog_name(event: &str) -> &'static str {
    dispatcher_core::events::catalog::public_event(event).unwrap().name.as_str()
}

fn index(configs: &[WebhookConfig]) -> WebhookIndex {
    WebhookIndex::new(
        configs
            .iter()
            .enumerate()
            .map(|(i, c)| Webhook::new(format!("w{i}").into(), c.clone(), Secret::from_key(&[0; 32]), 0))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_delivery_goes_to_an_enabled_subscribed_matching_webhook_without_its_attribute_keys(
        configs in proptest::collection::vec(webhook_strategy(), 0..8),
        event in event_strategy(),
    ) {
        let webhooks = index(&configs);
        for delivery in dispatch(&source("m"), &event, &webhooks) {
            let webhook = webhooks.webhooks().iter().find(|w| w.id == delivery.webhook_id).unwrap();
            prop_assert!(!webhook.config.disabled);
            prop_assert!(webhook.config.subscribes_to(&delivery.event));
            let body: Value = serde_json::from_str(&delivery.body).unwrap();
            prop_assert_eq!(&body["name"], delivery.event.as_str());
            let payload = body["payload"].as_object().unwrap();
            for key in payload.keys() {
                prop_assert!(!webhook.config.attributes.contains_key(key), "{} leaked to {}", key, webhook.id);
            }
            // The attributes the body lacks are exactly what the webhook was matched on.
            let spec = dispatcher_core::events::catalog::public_event(&delivery.event).unwrap();
            for required in spec.required_attributes() {
                prop_assert!(webhook.config.attributes.contains_key(required));
            }
        }
    }

    #[test]
    fn the_index_routes_exactly_like_the_rule_applied_to_every_webhook(
        configs in proptest::collection::vec(webhook_strategy(), 0..8),
        event in event_strategy(),
    ) {
        let webhooks = index(&configs);
        let mut expected = Vec::new();
        for public in public_events(&event, |a| webhooks.attribute_values(a)) {
            let public = public.unwrap();
            let by_index: Vec<&str> = webhooks.recipients(&public).map(|(_, w)| w.id.as_str()).collect();
            let by_scan: Vec<&str> = webhooks.webhooks().iter().filter(|w| receives(w, &public)).map(|w| w.id.as_str()).collect();
            prop_assert_eq!(&by_index, &by_scan);
            expected.extend(by_scan.into_iter().map(|id| (WebhookId::from(id), catalog_name(public.name()))));
        }
        let made: Vec<(WebhookId, &str)> = dispatch(&source("m"), &event, &webhooks).into_iter().map(|d| (d.webhook_id, catalog_name(&d.event))).collect();
        prop_assert_eq!(made, expected);
    }

    #[test]
    fn a_disabled_webhook_s_skipped_deliveries_are_those_it_would_get_enabled(
        config in webhook_strategy(),
        event in event_strategy(),
    ) {
        let (mut enabled, mut disabled) = (config.clone(), config);
        (enabled.disabled, disabled.disabled) = (false, true);
        let made = dispatch(&source("m"), &event, &index(&[enabled]));
        let skipped: Vec<_> = skipped(&source("m"), &event, &index(&[disabled.clone()])).into_iter().map(|u| u.delivery).collect();
        prop_assert_eq!(skipped, made);
        prop_assert!(dispatch(&source("m"), &event, &index(&[disabled])).is_empty());
    }

    #[test]
    fn dispatch_is_deterministic_and_ids_are_unique(
        configs in proptest::collection::vec(webhook_strategy(), 0..8),
        event in event_strategy(),
        source in "[a-z0-9-]{1,12}",
    ) {
        let webhooks = index(&configs);
        let first = dispatch(&self::source(&source), &event, &webhooks);
        prop_assert_eq!(&first, &dispatch(&self::source(&source), &event, &index(&configs)));
        let ids: HashSet<_> = first.iter().map(|d| d.id).collect();
        prop_assert_eq!(ids.len(), first.len());
        let other: HashSet<_> = dispatch(&self::source(&format!("{source}-again")), &event, &webhooks).into_iter().map(|d| d.id).collect();
        prop_assert!(ids.is_disjoint(&other));
    }

    #[test]
    fn a_webhook_receives_each_event_at_most_once(
        configs in proptest::collection::vec(webhook_strategy(), 0..8),
        event in event_strategy(),
    ) {
        let made = dispatch(&source("m"), &event, &index(&configs));
        let pairs: HashSet<_> = made.iter().map(|d| (d.webhook_id.clone(), d.body.clone())).collect();
        prop_assert_eq!(pairs.len(), made.len());
    }
}
