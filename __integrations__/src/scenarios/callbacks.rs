//! Scenarios of what a webhook hears back and how an answer is judged: the success callback with the
//! receiver's answer, its own credentials, and `failWhen`.

use super::{Ctx, Outcome, Scenario};
use crate::consumer::Behaviour;
use serde_json::json;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new("a success callback carries the receiver's answer, with callbackAuth", |c| {
            Box::pin(success_callback(c))
        }),
        Scenario::new("failWhen makes a 200 whose body reports errors a retried failure", |c| Box::pin(fail_when(c))),
    ]
}

async fn success_callback(c: &Ctx) -> Outcome {
    let answer = r#"{"received": true, "ticket": 42}"#;
    c.consumer.behave("answers", Behaviour { status: 200, body: answer, ..Behaviour::default() });
    // The callback URL fails once: the callback is retried; the delivery stays as it was.
    c.consumer.behave("answers-callback", Behaviour { fail_first: 1, ..Behaviour::default() });
    let id = c
        .register(
            "answers",
            json!({"subscriptions": ["ping"], "attributes": {"name": "answers"},
                   "auth": {"type": "bearer", "token": "target-t0ken"},
                   "callbackUrl": c.consumer.url("answers-callback"),
                   "callbackAuth": {"type": "basic", "username": "owner", "password": "callback-pa55"}}),
        )
        .await?;
    c.set_secret("answers-callback", &c.secret("answers"));
    c.publish(json!({"name": "ping", "payload": {"name": "answers"}}), 1).await?;
    let delivered = c.received("answers", 1).await?;
    let callbacks = c.received("answers-callback", 2).await?;
    let delivery_id = delivered[0].header("webhook-id").unwrap_or_default().to_owned();
    check!(delivered[0].header("authorization") == Some("Bearer target-t0ken"), "the delivery carries `auth`");
    let callback_ids: Vec<_> = callbacks.iter().map(|r| r.header("webhook-id")).collect();
    check!(callback_ids[0] == callback_ids[1] && callback_ids[0] != Some(&delivery_id), "{callback_ids:?}");
    for callback in &callbacks {
        // Basic b3duZXI6Y2FsbGJhY2stcGE1NQ== is owner:callback-pa55.
        check!(callback.header("authorization") == Some("Basic b3duZXI6Y2FsbGJhY2stcGE1NQ=="), "callbackAuth");
    }
    let body = callbacks[1].json();
    let expected = json!({"callbackType": "Callback", "deliveryId": delivery_id, "webhookId": id, "eventType": "ping",
        "payload": {}, "statusCode": 200, "response": {"received": true, "ticket": 42}});
    check!(body == expected, "callback body: {body}");
    let delivery = c.delivery_until(&delivery_id, "succeeded", |d| d["status"] == "succeeded").await?;
    check!(delivery["attempts"].as_array().map(Vec::len) == Some(1), "one attempt: {delivery}");
    let callback_id = callback_ids[0].unwrap_or_default();
    c.delivery_until(callback_id, "the callback succeeded after 2 attempts", |d| {
        d["status"] == "succeeded" && d["event"] == "Callback" && d["attempts"].as_array().map(Vec::len) == Some(2)
    })
    .await?;
    Ok(())
}

async fn fail_when(c: &Ctx) -> Outcome {
    let errors = r#"{"data": null, "errors": [{"message": "denied", "path": ["subscribe"]}]}"#;
    c.consumer.behave(
        "graphql",
        Behaviour {
            status: 200,
            fail_first: 1,
            fail_with: Some(errors),
            body: r#"{"data": {"subscribe": true}}"#,
            ..Behaviour::default()
        },
    );
    c.register(
        "graphql",
        json!({"subscriptions": ["ping"], "attributes": {"name": "graphql"},
               "failWhen": {"errors": [{"exists": true}]}}),
    )
    .await?;
    c.publish(json!({"name": "ping", "payload": {"name": "graphql"}}), 1).await?;
    let received = c.received("graphql", 2).await?;
    let id = received[0].header("webhook-id").unwrap_or_default();
    check!(received[1].header("webhook-id") == Some(id), "a retry of the same delivery");
    let delivery = c
        .delivery_until(id, "succeeded after 2 attempts", |d| {
            d["status"] == "succeeded" && d["attempts"].as_array().map(Vec::len) == Some(2)
        })
        .await?;
    let first = &delivery["attempts"][0];
    check!(first["statusCode"] == 200 && first["error"] == "failed by failWhen", "first attempt: {first}");
    check!(first["response"].as_str().is_some_and(|r| r.contains("denied")), "the body excerpt is kept: {first}");
    check!(delivery["attempts"][1]["error"].is_null(), "second attempt: {delivery}");
    Ok(())
}
