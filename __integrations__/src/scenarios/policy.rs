//! Scenarios of a webhook's delivery policy: its content filter and its own retry schedule.

use super::{Ctx, Outcome, Scenario};
use crate::consumer::Behaviour;
use serde_json::json;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("a filter lets through only the events it matches", |c| Box::pin(filter(c))),
        Scenario::new("a webhook's own retry schedule replaces the dispatcher's", |c| Box::pin(own_schedule(c))),
    ]
}

async fn filter(c: &Ctx) -> Outcome {
    let service = "aServiceIdFilter1";
    let id = c
        .register(
            "filtered",
            json!({"subscriptions": ["service:subscribed"], "attributes": {"serviceId": service},
                   "filter": {"payload": {"fiscalCode": [{"prefix": "AAA"}]}}}),
        )
        .await?;
    let (_, webhook) = c.call(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await?;
    check!(webhook["filter"]["payload"]["fiscalCode"][0]["prefix"] == "AAA", "GET shows the filter: {webhook}");
    let event = |fiscal_code: &str| json!({"name": "service:subscribed", "payload": {"fiscalCode": fiscal_code, "serviceId": service}});
    c.publish(event("ZZZBBB00A00A000B"), 0).await?;
    c.publish(event("AAABBB00A00A000B"), 1).await?;
    let received = c.received("filtered", 1).await?;
    check!(received.len() == 1, "{} deliveries", received.len());
    let body = received[0].json();
    check!(body["payload"]["fiscalCode"] == "AAABBB00A00A000B", "the matching one: {body}");

    let bad = json!({"filter": {"payload": {"fiscalCode": [{"numeric": ["~", 1]}]}}});
    let (status, problem) = c.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(bad)).await?;
    check!(
        status == 400 && problem["problems"][0]["path"] == "filter",
        "a bad pattern names filter: {status} {problem}"
    );
    Ok(())
}

async fn own_schedule(c: &Ctx) -> Outcome {
    c.consumer.behave("impatient", Behaviour { status: 503, ..Behaviour::default() });
    c.register(
        "impatient",
        json!({"subscriptions": ["ping"], "attributes": {"name": "impatient"}, "retrySchedule": "100ms"}),
    )
    .await?;
    c.publish(json!({"name": "ping", "payload": {"name": "impatient"}}), 1).await?;
    let received = c.received("impatient", 2).await?;
    let id = received[0].header("webhook-id").unwrap_or_default().to_owned();
    // The dispatcher's schedule would make four attempts; this webhook's makes two.
    let delivery = c.delivery_until(&id, "dead", |d| d["status"] == "dead").await?;
    let attempts = delivery["attempts"].as_array().map_or(0, Vec::len);
    check!(attempts == 2, "{attempts} attempts: {delivery}");
    check!(c.consumer.at("impatient").len() == 2, "{} requests", c.consumer.at("impatient").len());
    Ok(())
}
