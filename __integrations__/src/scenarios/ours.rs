//! Our scenarios, beyond the original set: retries, dead-letter with the failure callback, disabled and deleted
//! webhooks, secret rotation, replay, invalid events, the correlation id, and a redelivered event.

use super::{Ctx, Outcome, Scenario, DEADLINE};
use crate::consumer::{Behaviour, Received};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("retries keep the webhook-id", |c| Box::pin(retries(c))),
        Scenario::new("dead-letter with a failure callback", |c| Box::pin(dead_letter(c))),
        Scenario::new("disabled and deleted webhooks receive nothing", |c| Box::pin(disabled_and_deleted(c))),
        Scenario::new("rotated secret: both signatures verify during the overlap", |c| Box::pin(rotation(c))),
        Scenario::new("replay from the attempt log keeps the webhook-id", |c| Box::pin(replay(c))),
        Scenario::new("invalid events are rejected with every problem", |c| Box::pin(invalid(c))),
        Scenario::new("the correlation id is passed on", |c| Box::pin(correlation(c))),
        Scenario::new("an event delivered twice is sent once", |c| Box::pin(redelivered(c))),
    ]
}

/// The body of the last request `hook` received.
fn last(received: &[Received]) -> Value {
    received.last().map(Received::json).unwrap_or(Value::Null)
}

async fn retries(c: &Ctx) -> Outcome {
    c.consumer.behave("flaky", Behaviour { fail_first: 2, ..Behaviour::default() });
    c.register("flaky", json!({"subscriptions": ["ping"], "attributes": {"name": "flaky"}})).await?;
    c.publish(json!({"name": "ping", "payload": {"name": "flaky"}}), 1).await?;
    let received = c.received("flaky", 3).await?;
    let ids: Vec<_> = received.iter().map(|r| r.header("webhook-id")).collect();
    check!(ids.iter().all(|id| *id == ids[0]), "one webhook-id across attempts: {ids:?}");
    let id = ids[0].unwrap_or_default();
    c.delivery_until(id, "succeeded after 3 attempts", |d| {
        d["status"] == "succeeded" && d["attempts"].as_array().is_some_and(|a| a.len() == 3)
    })
    .await?;
    Ok(())
}

async fn dead_letter(c: &Ctx) -> Outcome {
    c.consumer.behave("refuses", Behaviour { status: 400, ..Behaviour::default() });
    let callback = c.consumer.url("callback");
    c.register(
        "refuses",
        json!({"subscriptions": ["ping"], "attributes": {"name": "refuses"}, "failureCallbackUrl": callback}),
    )
    .await?;
    c.set_secret("callback", &c.secret("refuses"));
    c.publish(json!({"name": "ping", "payload": {"name": "refuses"}}), 1).await?;
    let callbacks = c.received("callback", 1).await?;
    let body = last(&callbacks);
    check!(body["callbackType"] == "DeliveryFailure" && body["statusCode"] == 400, "callback: {body}");
    let id = body["deliveryId"].as_str().unwrap_or_default();
    c.delivery_until(id, "dead", |d| d["status"] == "dead").await?;
    Ok(())
}

async fn disabled_and_deleted(c: &Ctx) -> Outcome {
    let id = c.register("quiet", json!({"subscriptions": ["ping"], "attributes": {"name": "quiet"}})).await?;
    let ping = json!({"name": "ping", "payload": {"name": "quiet"}});
    let (status, _) =
        c.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"disabled": true}))).await?;
    check!(status == 200, "disabling: {status}");
    c.publish(ping.clone(), 0).await?;
    let (status, _) = c.call(reqwest::Method::DELETE, &format!("/webhooks/{id}"), None).await?;
    check!(status == 204, "deleting: {status}");
    c.publish(ping, 0).await?;
    check!(c.consumer.at("quiet").is_empty(), "nothing arrived");
    Ok(())
}

async fn rotation(c: &Ctx) -> Outcome {
    let id = c.register("rotated", json!({"subscriptions": ["ping"], "attributes": {"name": "rotated"}})).await?;
    let old = c.secret("rotated");
    let (status, rotated) = c.call(reqwest::Method::POST, &format!("/webhooks/{id}/rotate-secret"), None).await?;
    check!(status == 200, "rotating: {status} {rotated}");
    let new = rotated["secret"].as_str().unwrap_or_default().to_owned();
    c.publish(json!({"name": "ping", "payload": {"name": "rotated"}}), 1).await?;
    let received = c.received("rotated", 1).await?;
    let delivery = &received[0];
    check!(delivery.verify(&new) && delivery.verify(&old), "both the new and the previous secret verify");
    Ok(())
}

async fn replay(c: &Ctx) -> Outcome {
    let one = c.consumer.at("wh1").len();
    c.publish(json!({"name": "ping", "payload": {"name": "wh1"}}), 1).await?;
    let received = c.received("wh1", one + 1).await?;
    let id = received[one].header("webhook-id").unwrap_or_default().to_owned();
    c.delivery_until(&id, "succeeded", |d| d["status"] == "succeeded").await?;
    let (status, _) = c.call(reqwest::Method::POST, &format!("/deliveries/{id}/retry"), None).await?;
    check!(status == 202, "replaying: {status}");
    let again = c.received("wh1", one + 2).await?;
    check!(again[one + 1].header("webhook-id") == Some(id.as_str()), "the replay keeps the webhook-id");
    check!(again[one + 1].body == received[one].body, "and the exact body");
    Ok(())
}

async fn invalid(c: &Ctx) -> Outcome {
    let bad =
        json!({"name": "profile:completed", "payload": {"fiscalCode": "abc", "servicePreferencesMode": "SOMETIMES"}});
    let (status, problem) = c.call(reqwest::Method::POST, "/events", Some(bad)).await?;
    check!(status == 400, "an invalid event is refused: {status}");
    let text = problem.to_string();
    for expected in ["payload.fiscalCode", "payload.servicePreferencesMode"] {
        check!(text.contains(expected), "the answer names {expected}: {text}");
    }
    let (_, rejected) = c.call(reqwest::Method::GET, "/events/rejected?limit=1", None).await?;
    check!(
        rejected["items"][0]["problems"].as_array().is_some_and(|p| p.len() == 2),
        "recorded with its reasons: {rejected}"
    );
    Ok(())
}

async fn correlation(c: &Ctx) -> Outcome {
    let one = c.consumer.at("wh1").len();
    c.publish_with(json!({"name": "ping", "payload": {"name": "wh1"}}), 1, Some("corr-42")).await?;
    let received = c.received("wh1", one + 1).await?;
    check!(received[one].header("x-correlation-id") == Some("corr-42"), "x-correlation-id reaches the webhook");
    Ok(())
}

/// A message delivered twice (Service Bus is at-least-once) must reach the webhook once. On the Functions target
/// the host stand-in abandons the event after its jobs ran, so OnIncomingEvent runs again and outputs its jobs
/// again; locally (or with a host elsewhere), the same event is published twice under one idempotency key.
async fn redelivered(c: &Ctx) -> Outcome {
    c.register("once", json!({"subscriptions": ["ping"], "attributes": {"name": "once"}})).await?;
    let event = json!({"name": "ping", "payload": {"name": "once"}});
    let key = format!("redelivered-{}", std::process::id());
    match &c.functions {
        Some(functions) => {
            functions.redeliver_next_event();
            c.publish_counted(&event, None, Some(&key)).await?;
            functions.invoked(&key, 2, DEADLINE).await?;
        }
        None => {
            for _ in 0..2 {
                c.publish_counted(&event, None, Some(&key)).await?;
            }
        }
    }
    let received = c.received("once", 1).await?;
    let id = received[0].header("webhook-id").unwrap_or_default().to_owned();
    let delivery = c.delivery_until(&id, "succeeded", |d| d["status"] == "succeeded").await?;
    // Whatever a duplicate job could still do has been done: the second invocation's jobs completed.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(200) {
        check!(c.consumer.at("once").len() == 1, "delivered {} times", c.consumer.at("once").len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = delivery["attempts"].as_array().map_or(0, Vec::len);
    check!(attempts == 1, "{attempts} attempts logged: {delivery}");
    Ok(())
}
