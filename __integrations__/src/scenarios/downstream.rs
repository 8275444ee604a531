//! The scenarios of `catalogs/downstream.json` (`testagent run --catalog __integrations__/catalogs/downstream.json`):
//! the CTP table, each target (Customer Central, Servco, TC) receiving an account or subscription change in its
//! own format with the customer's details fetched by an enricher and the correlation id carried; and the event
//! accelerator's GraphQL hydration, whose `200 {"errors"}` is retried on the schedule and then rejected with
//! its reason, nothing delivered without its data.

use super::{Ctx, Outcome, Scenario, DEADLINE};
use crate::apis::{customer_details, CUSTOMER_API_TOKEN};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The events these scenarios publish and subscribe to.
pub(super) const EVENTS: [&str; 6] = [
    "customer:changed",
    "account:created",
    "account:updated",
    "subscription:updated",
    "order:placed",
    "order:confirmed",
];

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("downstream: each target gets its own format, hydrated with the customer's details", |c| {
            Box::pin(targets_and_formats(c))
        }),
        Scenario::new("downstream: a GraphQL 200 with errors is retried, then rejected; nothing is delivered", |c| {
            Box::pin(graphql_errors(c))
        }),
    ]
}

/// Customer Central's own ("cc-specified") format.
const CUSTOMER_CENTRAL: &str = r#"
let p = body.payload;
#{
    customerNumber: p.customerId,
    action: if p.trigger.ends_with(":created") { "CREATE" } else { "UPDATE" },
    entity: if "accountId" in p { "ACCOUNT" } else { "SUBSCRIPTION" },
    entityId: if "accountId" in p { p.accountId } else { p.subscriptionId },
    contact: #{ fullName: enrichment.customer.name, email: enrichment.customer.email },
    correlationId: correlationId
}"#;

/// The "combined" format of Servco and TC: the customer's details with the change folded in.
const COMBINED: &str = r#"
let p = body.payload;
let combined = p.customer;
if "accountId" in p { combined.account = #{ id: p.accountId }; }
if "subscriptionId" in p { combined.subscription = #{ id: p.subscriptionId, plan: p.plan }; }
#{ type: p.trigger, target: attributes.target, data: combined }"#;

async fn targets_and_formats(c: &Ctx) -> Outcome {
    let subscribe = |transform: &str, target: &str| json!({"subscriptions": ["customer:changed"], "attributes": {"target": target}, "transform": transform});
    c.register("cc", subscribe(CUSTOMER_CENTRAL, "cc")).await?;
    c.register("servco", subscribe(COMBINED, "servco")).await?;
    c.register("tc", subscribe(COMBINED, "tc")).await?;

    let account = json!({"name": "account:created", "payload": {"customerId": "CUST-1", "accountId": "ACC-1"}});
    c.publish_with(account, 3, Some("ctp-corr-1")).await?;
    let plan = json!({"name": "subscription:updated", "payload": {"customerId": "CUST-1", "subscriptionId": "SUB-9", "plan": "gold"}});
    c.publish_with(plan, 3, Some("ctp-corr-2")).await?;

    let details = customer_details("CUST-1");
    let cc = c.received("cc", 2).await?;
    let mut bodies: Vec<Value> = cc.iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["action"].to_string());
    let contact = json!({"fullName": details["name"], "email": details["email"]});
    let expected_cc = [
        json!({"customerNumber": "CUST-1", "action": "CREATE", "entity": "ACCOUNT", "entityId": "ACC-1",
               "contact": contact, "correlationId": "ctp-corr-1"}),
        json!({"customerNumber": "CUST-1", "action": "UPDATE", "entity": "SUBSCRIPTION", "entityId": "SUB-9",
               "contact": contact, "correlationId": "ctp-corr-2"}),
    ];
    check!(bodies == expected_cc, "Customer Central's format: {bodies:?}");
    for target in ["servco", "tc"] {
        let received = c.received(target, 2).await?;
        let mut bodies: Vec<Value> = received.iter().map(|r| r.json()).collect();
        bodies.sort_by_key(|b| b["type"].to_string());
        let mut account = details.clone();
        account["account"] = json!({"id": "ACC-1"});
        let mut subscription = details.clone();
        subscription["subscription"] = json!({"id": "SUB-9", "plan": "gold"});
        let expected = [
            json!({"type": "account:created", "target": target, "data": account}),
            json!({"type": "subscription:updated", "target": target, "data": subscription}),
        ];
        check!(bodies == expected, "{target}'s combined format: {bodies:?}");
        let correlation: Vec<Option<&str>> = received.iter().map(|r| r.header("x-correlation-id")).collect();
        check!(correlation.contains(&Some("ctp-corr-1")), "{target}: the correlation id is carried: {correlation:?}");
    }
    // Hydrated once per event, whatever the number of targets; the second from the cache (30 s in the file).
    let asked = c.consumer.apis.asked("customers/CUST-1");
    check!(asked.len() == 1, "the customer API was asked {} times, expected once", asked.len());
    let authorization = asked[0].1.get("authorization").and_then(|v| v.to_str().ok());
    check!(authorization == Some(&*format!("Bearer {CUSTOMER_API_TOKEN}")), "the token from the environment");
    check!(
        asked[0].1.get("x-correlation-id").and_then(|v| v.to_str().ok()) == Some("ctp-corr-1"),
        "the customer API sees the correlation id"
    );
    Ok(())
}

async fn graphql_errors(c: &Ctx) -> Outcome {
    c.register("orders", json!({"subscriptions": ["order:confirmed"]})).await?;
    let missing = json!({"name": "order:placed", "payload": {"orderId": "O-missing-1"}});
    let published = c.producer.publish_as(&missing, Some("order-corr"), None).await?;
    let started = Instant::now();
    let rejected = loop {
        let (_, page) = c.call(reqwest::Method::GET, "/events/rejected?limit=20", None).await?;
        let found = page["items"].as_array().into_iter().flatten().find(|r| r["id"] == published.id.as_str()).cloned();
        if let Some(rejected) = found {
            break rejected;
        }
        check!(started.elapsed() < DEADLINE, "event {} not rejected after {DEADLINE:?}: {page}", published.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = rejected["problems"].to_string();
    check!(
        reason.contains("enricher order: the answer matches failWhen")
            && reason.contains("order O-missing-1 not found"),
        "the reason names the enricher and the GraphQL error: {rejected}"
    );
    let asked = c.consumer.apis.asked("graphql");
    // The first try and the three of the scenarios' schedule.
    check!(asked.len() == 4 && reason.contains("tried 4 times"), "{} GraphQL requests: {reason}", asked.len());
    check!(asked[0].2["variables"] == json!({"id": "O-missing-1"}), "the query's variables: {}", asked[0].2);
    check!(c.consumer.at("orders").is_empty(), "nothing delivered without its data");

    let found = json!({"name": "order:placed", "payload": {"orderId": "O-7"}});
    c.publish(found, 1).await?;
    let received = c.received("orders", 1).await?;
    let body = received[0].json();
    check!(body["payload"]["order"] == json!({"id": "O-7", "total": 42.5, "currency": "EUR"}), "hydrated: {body}");
    Ok(())
}
