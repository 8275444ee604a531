//! Tenants' grants in routing, over random tenants, webhooks and events: no delivery (nor skipped one) goes to
//! a tenant's webhook holding an attribute value outside its tenant's grants, and the webhooks the grants let
//! through are routed exactly as if the operator owned them.

use crate::properties::{event_strategy, webhook_strategy};
use dispatcher_core::dispatch::{dispatch, skipped, Source};
use dispatcher_core::model::{blocked, Secret, Tenant, TenantConfig, TenantId, Webhook, WebhookConfig};
use dispatcher_core::webhooks::WebhookIndex;
use proptest::prelude::*;
use std::collections::BTreeMap;

const TENANTS: [&str; 4] = ["t0", "t1", "t2", "gone"];

fn tenant_strategy(id: &'static str) -> impl Strategy<Value = Tenant> {
    (
        proptest::sample::subsequence(vec!["S1", "S2", "S3"], 0..=3),
        proptest::option::of(proptest::sample::subsequence(vec!["AAABBB00A00A000B"], 0..=1)),
        proptest::bool::weighted(0.15),
    )
        .prop_map(move |(services, fiscal_codes, disabled)| {
            let mut grants =
                BTreeMap::from([("serviceId".to_owned(), services.iter().map(|s| s.to_string()).collect())]);
            if let Some(codes) = fiscal_codes {
                grants.insert("fiscalCode".to_owned(), codes.iter().map(|s| s.to_string()).collect());
            }
            let config = TenantConfig { name: id.to_owned(), grants, max_webhooks: 25, disabled };
            Tenant { id: id.into(), config, created_at_ms: 0, updated_at_ms: 0 }
        })
}

fn owned_webhook_strategy() -> impl Strategy<Value = WebhookConfig> {
    (webhook_strategy(), proptest::option::of(proptest::sample::select(TENANTS.to_vec())))
        .prop_map(|(config, tenant)| WebhookConfig { tenant: tenant.map(TenantId::from), ..config })
}

fn webhooks(configs: &[WebhookConfig]) -> Vec<Webhook> {
    let secret = Secret::from_key(&[0; 32]);
    configs
        .iter()
        .enumerate()
        .map(|(i, c)| Webhook::new(format!("w{i}").into(), c.clone(), secret.clone(), 0))
        .collect()
}

fn source() -> Source {
    Source { id: "m".to_owned(), correlation_id: None, traceparent: None }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_delivery_goes_to_a_tenant_webhook_outside_its_grants(
        tenants in (tenant_strategy("t0"), tenant_strategy("t1"), tenant_strategy("t2")),
        configs in proptest::collection::vec(owned_webhook_strategy(), 0..10),
        event in event_strategy(),
    ) {
        let tenants = vec![tenants.0, tenants.1, tenants.2];
        let all = webhooks(&configs);
        let index = WebhookIndex::with_tenants(all.clone(), tenants.clone());
        let made = dispatch(&source(), &event, &index);
        for delivery in made.iter().chain(skipped(&source(), &event, &index).iter().map(|u| &u.delivery)) {
            let webhook = index.webhooks().iter().find(|w| w.id == delivery.webhook_id).unwrap();
            if let Some(owner) = &webhook.config.tenant {
                let tenant = tenants.iter().find(|t| &t.id == owner);
                prop_assert!(tenant.is_some_and(|t| !t.config.disabled), "{} of {} got an event", webhook.id, owner);
                for (attribute, value) in &webhook.config.attributes {
                    prop_assert!(tenant.unwrap().grants(attribute, value), "{}={} outside the grants of {}", attribute, value, owner);
                }
            }
        }
        // What the grants let through is routed as the operator's own webhooks would be.
        let allowed: Vec<Webhook> = all
            .into_iter()
            .filter(|w| blocked(w, w.config.tenant.as_ref().and_then(|id| tenants.iter().find(|t| &t.id == id))).is_none())
            .map(|w| Webhook { config: WebhookConfig { tenant: None, ..w.config.clone() }, ..w })
            .collect();
        prop_assert_eq!(made, dispatch(&source(), &event, &WebhookIndex::new(allowed)));
    }
}
