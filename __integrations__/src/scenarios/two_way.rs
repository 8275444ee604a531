//! The two-way integration: the dispatcher delivers `service:subscribed` to an integrator, the integrator
//! answers with a webhook of its own to the dispatcher's inbound endpoint (`POST /in/{sourceId}`), signed the
//! way the dispatcher signs (Standard Webhooks, by the `standardwebhooks` crate), and the internal service
//! subscribed to what that source receives gets it as `crm:service.confirmed`, under the correlation id of the
//! event that started it all. The answer sent again is a repeat: answered 200, published once.

use super::{Ctx, Outcome, Scenario};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![Scenario::new("two-way: an integrator's signed answer reaches the internal subscriber, once", |c| {
        Box::pin(two_way(c))
    })]
}

/// The integrator's signing secret for its answers (the source's).
const INTEGRATOR_SECRET: &str = "whsec_dHdvLXdheS1pbnRlZ3JhdG9yLXNlY3JldC0zMmI=";
const SOURCE: &str = "crm";
const SERVICE: &str = "sTwoWay0000001";
const CORRELATION: &str = "two-way-corr-7";

async fn two_way(c: &Ctx) -> Outcome {
    // A dispatcher that ran this before keeps its source: start from none.
    let _ = c.call(reqwest::Method::DELETE, &format!("/sources/{SOURCE}"), None).await?;
    let source = json!({"id": SOURCE, "verify": {"type": "standard-webhooks", "secrets": [INTEGRATOR_SECRET]}});
    let (status, created) = c.call(reqwest::Method::POST, "/sources", Some(source)).await?;
    check!(status == 201, "creating the source: {status} {created}");
    check!(!created.to_string().contains(INTEGRATOR_SECRET), "the source's secret is not shown: {created}");
    let integrator = json!({"subscriptions": ["service:subscribed"], "attributes": {"serviceId": SERVICE}});
    c.register("two-way-integrator", integrator).await?;
    let internal_id = c.register("two-way-internal", json!({"subscriptions": [format!("{SOURCE}:*")]})).await?;

    let subscribed =
        json!({"name": "service:subscribed", "payload": {"serviceId": SERVICE, "fiscalCode": "AAABBB00A00A000B"}});
    c.publish_with(subscribed, 1, Some(CORRELATION)).await?;
    let delivered = c.received("two-way-integrator", 1).await?;
    let delivered = &delivered[0];
    let correlation = delivered.header("x-correlation-id").unwrap_or_default().to_owned();
    check!(correlation == CORRELATION, "the integrator gets the correlation id: {correlation:?}");

    // The integrator confirms what it received, naming it by its webhook-id.
    let answer = json!({"type": "service.confirmed", "data": {
        "serviceId": delivered.json()["payload"]["serviceId"], "confirms": delivered.header("webhook-id")}});
    let body = answer.to_string();
    let message_id = format!("confirm-{}", delivered.header("webhook-id").unwrap_or_default());
    let first = post_answer(c, &message_id, &body, &correlation).await?;
    check!(first.0 == 202 && first.1["event"] == "crm:service.confirmed", "the answer is published: {first:?}");
    let again = post_answer(c, &message_id, &body, &correlation).await?;
    check!(again.0 == 200 && again.1["repeat"] == true && again.1["id"] == first.1["id"], "a repeat: {again:?}");

    let received = c.received("two-way-internal", 1).await?;
    let internal = &received[0];
    check!(
        internal.json() == json!({"name": "crm:service.confirmed", "payload": answer}),
        "the internal subscriber gets the integrator's answer as the source's event: {}",
        internal.json()
    );
    check!(
        internal.header("x-correlation-id") == Some(CORRELATION),
        "under the original correlation id: {:?}",
        internal.header("x-correlation-id")
    );
    // Published once: the dispatcher logged one delivery to the internal subscriber, the repeat none.
    let id = internal.header("webhook-id").unwrap_or_default();
    c.delivery_until(id, "delivered", |d| d["status"] == "succeeded").await?;
    let (_, logged) = c.call(reqwest::Method::GET, &format!("/webhooks/{internal_id}/deliveries"), None).await?;
    let count = logged["items"].as_array().map_or(0, Vec::len);
    check!(count == 1, "the repeat made no delivery: {count} logged");
    Ok(())
}

/// Posts the integrator's answer to the source, signed as Standard Webhooks; the status and the answer.
async fn post_answer(c: &Ctx, message_id: &str, body: &str, correlation: &str) -> Result<(u16, Value), String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs() as i64;
    let signer = standardwebhooks::Webhook::new(INTEGRATOR_SECRET).map_err(|e| e.to_string())?;
    let signature = signer.sign(message_id, now, body.as_bytes()).map_err(|e| e.to_string())?;
    let response = c
        .client
        .post(format!("{}/in/{SOURCE}", c.api))
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .header("x-correlation-id", correlation)
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| format!("posting the answer: {e}"))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}
