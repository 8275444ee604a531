//! Received events through `dispatch`: to the operator's webhooks subscribed to their name or their source's
//! `*`, with the provider's JSON body (as parsed: what it says, not its bytes), whatever the webhooks' attributes; never to a tenant's webhook.

use crate::webhook;
use dispatcher_core::dispatch::{dispatch, skipped, Source};
use dispatcher_core::events::decode;
use dispatcher_core::inbound::received::message;
use dispatcher_core::model::TenantId;
use dispatcher_core::webhooks::WebhookIndex;
use serde_json::json;

#[test]
fn a_received_event_goes_to_its_subscribers_by_name_or_source_with_the_providers_body() {
    let by_name =
        webhook("by-name", json!({"subscriptions": ["stripe:customer.updated"], "attributes": {"id": "other"}}));
    let by_source = webhook("by-source", json!({"subscriptions": ["stripe:*", "stripe:customer.updated"]}));
    let other_type = webhook("other-type", json!({"subscriptions": ["stripe:invoice.paid", "gh:*"]}));
    let mut tenants = webhook("tenant", json!({"subscriptions": ["stripe:*"]}));
    tenants.config.tenant = Some(TenantId::from("acme"));
    let mut disabled = webhook("disabled", json!({"subscriptions": ["stripe:*"]}));
    disabled.config.disabled = true;
    let index = WebhookIndex::new(vec![by_name, by_source, other_type, tenants, disabled]);
    let body = br#"{"id":"evt_1","type":"customer.updated","data":{"object":{"id":"cus_1","name":"A \"B\""}}}"#;
    let event = decode(&message("stripe", "customer.updated", body)).unwrap();
    let source = Source { id: "in_1".to_owned(), correlation_id: Some("c-1".to_owned()), traceparent: None };
    let deliveries = dispatch(&source, &event, &index);
    let to: Vec<&str> = deliveries.iter().map(|d| d.webhook_id.as_str()).collect();
    assert_eq!(to, ["by-name", "by-source"], "each subscriber once, the attributes not read");
    let expected = json!({"name": "stripe:customer.updated", "payload": serde_json::from_slice::<serde_json::Value>(body).unwrap()});
    for delivery in &deliveries {
        assert_eq!(delivery.event, "stripe:customer.updated");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&delivery.body).unwrap(), expected);
        assert_eq!(delivery.correlation_id.as_deref(), Some("c-1"));
    }
    // The same message routed again gives the same ids: a repeat is delivered once.
    assert_eq!(dispatch(&source, &event, &index), deliveries);
    let skipped: Vec<String> =
        skipped(&source, &event, &index).into_iter().map(|u| u.delivery.webhook_id.to_string()).collect();
    assert_eq!(skipped, ["disabled"]);
    let push = decode(&message("gh", "push", b"[1, 2]")).unwrap();
    let to: Vec<String> = dispatch(&source, &push, &index).into_iter().map(|d| d.body).collect();
    assert_eq!(to, [r#"{"name":"gh:push","payload":[1,2]}"#]);
}
