//! Scenarios of a webhook's delivery policy: its content filter, its rate limit, its own retry schedule, and
//! auto-disable.

use super::{Ctx, Outcome, Scenario};
use crate::consumer::Behaviour;
use serde_json::json;
use std::time::Duration;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("a filter lets through only the events it matches", |c| Box::pin(filter(c))),
        Scenario::new("a rate-limited webhook gets every delivery, never more a second", |c| Box::pin(rate_limit(c))),
        Scenario::new("a webhook's own retry schedule replaces the dispatcher's", |c| Box::pin(own_schedule(c))),
        Scenario::new("a webhook failing past the window is disabled, with a callback", |c| Box::pin(auto_disable(c))),
        Scenario::new("a disabled webhook's events are skipped, then recovered", |c| {
            Box::pin(skipped_then_recovered(c))
        }),
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

/// A burst of 16 events for a webhook limited to 5 a second: every one arrives, no second holds more than the
/// limit (one more for a window boundary, as the issue allows: arrival times add the network's jitter), and a
/// webhook without a limit is not held up behind them.
async fn rate_limit(c: &Ctx) -> Outcome {
    const LIMIT: usize = 5;
    const BURST: usize = 16;
    let id = c
        .register("paced", json!({"subscriptions": ["ping"], "attributes": {"name": "paced"}, "rateLimit": 5}))
        .await?;
    c.register("unpaced", json!({"subscriptions": ["ping"], "attributes": {"name": "unpaced"}})).await?;
    let (_, webhook) = c.call(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await?;
    check!(webhook["rateLimit"] == LIMIT, "GET shows the limit: {webhook}");
    for _ in 0..BURST {
        c.publish(json!({"name": "ping", "payload": {"name": "paced"}}), 1).await?;
    }
    c.publish(json!({"name": "ping", "payload": {"name": "unpaced"}}), 1).await?;
    let unpaced = c.received("unpaced", 1).await?[0].at;
    let received = c.received("paced", BURST).await?;
    let arrivals: Vec<_> = received.iter().map(|r| r.at).collect();
    let busiest = arrivals
        .iter()
        .map(|&start| arrivals.iter().filter(|&&t| t >= start && t < start + Duration::from_secs(1)).count())
        .max()
        .unwrap_or(0);
    check!(busiest <= LIMIT + 1, "{busiest} deliveries in one second, with a limit of {LIMIT}");
    let (first, last) = (arrivals.iter().min(), arrivals.iter().max());
    let span = last.zip(first).map(|(last, first)| *last - *first).unwrap_or_default();
    // 16 deliveries at 5 a second take 3 s from the first to the last.
    check!(span >= Duration::from_millis(2_800), "{BURST} deliveries within {span:?}");
    check!(last.is_some_and(|last| unpaced < *last), "the webhook without a limit waited behind the paced one");
    check!(
        c.consumer.at("paced").len() == BURST,
        "{} requests: waiting is not an attempt",
        c.consumer.at("paced").len()
    );

    let (status, problem) =
        c.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"rateLimit": 0}))).await?;
    check!(status == 400 && problem["problems"][0]["path"] == "rateLimit", "a zero limit: {status} {problem}");
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

/// The run's window is 400 ms: with 300 ms between attempts, the third failure (at 480 ms or later, jitter
/// included) is the first past it.
async fn auto_disable(c: &Ctx) -> Outcome {
    c.consumer.behave("failing", Behaviour { status: 503, ..Behaviour::default() });
    let callback = c.consumer.url("failing-callback");
    let id = c
        .register(
            "failing",
            json!({"subscriptions": ["ping"], "attributes": {"name": "failing"}, "failureCallbackUrl": callback,
                   "retrySchedule": "300ms,300ms,300ms,300ms"}),
        )
        .await?;
    c.set_secret("failing-callback", &c.secret("failing"));
    c.publish(json!({"name": "ping", "payload": {"name": "failing"}}), 1).await?;
    let callbacks = c.received("failing-callback", 1).await?;
    let body = callbacks.iter().map(|r| r.json()).find(|b| b["callbackType"] == "WebhookDisabled");
    let Some(body) = body else { return Err(format!("no WebhookDisabled callback: {}", callbacks.len())) };
    check!(body["webhookId"] == id.as_str(), "the callback names the webhook: {body}");
    let reason = body["reason"].as_str().unwrap_or_default();
    check!(reason.starts_with("every attempt failed since") && reason.contains("HTTP 503"), "reason: {reason}");
    let (_, webhook) = c.call(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await?;
    check!(webhook["disabled"] == true, "disabled: {webhook}");
    check!(webhook["disabledReason"] == reason && webhook["disabledAt"] == body["disabledAt"], "GET: {webhook}");
    check!(c.consumer.at("failing").len() == 3, "three attempts, then none: {}", c.consumer.at("failing").len());

    let (status, enabled) =
        c.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"disabled": false}))).await?;
    check!(status == 200 && enabled["disabled"] == false, "re-enabling: {status} {enabled}");
    check!(enabled.get("disabledReason").is_none() && enabled.get("disabledAt").is_none(), "cleared: {enabled}");
    Ok(())
}

/// A webhook disabled after failing: what it missed is logged as skipped, and once it is enabled again, recovery
/// sends that and its dead delivery, each with its original `webhook-id`.
async fn skipped_then_recovered(c: &Ctx) -> Outcome {
    c.consumer.behave("missed", Behaviour { status: 503, ..Behaviour::default() });
    let id = c
        .register(
            "missed",
            json!({"subscriptions": ["ping"], "attributes": {"name": "missed"}, "retrySchedule": "300ms,300ms,300ms"}),
        )
        .await?;
    let ping = json!({"name": "ping", "payload": {"name": "missed"}});
    c.publish(ping.clone(), 1).await?;
    let failed = c.received("missed", 3).await?;
    let dead_id = failed[0].header("webhook-id").unwrap_or_default().to_owned();
    c.delivery_until(&dead_id, "dead", |d| d["status"] == "dead").await?;
    let (_, webhook) = c.call(reqwest::Method::GET, &format!("/webhooks/{id}"), None).await?;
    check!(webhook["disabled"] == true, "disabled after failing: {webhook}");

    c.publish(ping, 0).await?;
    let skipped_id = c.skipped_delivery(&id).await?;
    let recover = json!({"since": "1970-01-01T00:00:00Z"});
    let (status, refused) =
        c.call(reqwest::Method::POST, &format!("/webhooks/{id}/recover"), Some(recover.clone())).await?;
    check!(status == 409, "recovering a disabled webhook is refused: {status} {refused}");

    c.consumer.behave("missed", Behaviour::default());
    let (status, _) =
        c.call(reqwest::Method::PATCH, &format!("/webhooks/{id}"), Some(json!({"disabled": false}))).await?;
    check!(status == 200, "re-enabling: {status}");
    let (status, recovered) = c.call(reqwest::Method::POST, &format!("/webhooks/{id}/recover"), Some(recover)).await?;
    check!(status == 202 && recovered["deliveries"] == 2, "recovering: {status} {recovered}");
    let received = c.received("missed", 5).await?;
    let mut ids: Vec<&str> = received[3..].iter().filter_map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    let mut expected = vec![dead_id.as_str(), skipped_id.as_str()];
    expected.sort_unstable();
    check!(ids == expected, "the recovered deliveries keep their ids: {ids:?}, expected {expected:?}");

    let bad = json!({"since": "yesterday"});
    let (status, problem) = c.call(reqwest::Method::POST, &format!("/webhooks/{id}/recover"), Some(bad)).await?;
    check!(status == 400 && problem["problems"][0]["path"] == "since", "a bad window names since: {problem}");
    Ok(())
}
