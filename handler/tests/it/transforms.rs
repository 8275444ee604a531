//! Transforms through the API and on the wire: a webhook registered with one receives the body it makes, signed
//! over those bytes; one making nothing is logged filtered; one failing is dead at once with its error, without
//! a request; a template that does not compile is a 400 naming `transform`; the preview shows all three.

use crate::support::{eventually, eventually_async, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::time::Duration;

const FC: &str = "AAABBB00A00A000B";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receives_the_body_its_transform_makes_signed_and_the_others_are_logged() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("transforms", &[], &[]);
    let register = |service: &str, transform: &str| {
        json!({"url": receivers.url(service), "subscriptions": ["service:subscribed"],
               "attributes": {"serviceId": service}, "transform": transform})
    };
    let (status, refused) =
        dispatcher.call("POST", "/webhooks", Some(register("S0", "#{ customer: body.payload.fiscalCode "))).await;
    assert_eq!(status, 400, "{refused}");
    let problem = &refused["problems"][0];
    assert_eq!(problem["path"], "transform", "{refused}");
    assert!(problem["message"].as_str().unwrap().starts_with("does not compile: "), "{refused}");
    assert!(problem["message"].as_str().unwrap().contains("(line 1, position 38)"), "{refused}");

    let (reshaped, secret) = dispatcher
        .register(register("S1", "#{ customer: body.payload.fiscalCode, service: attributes.serviceId, id: eventId }"))
        .await;
    let (filtered, _) = dispatcher.register(register("S2", "if body.payload.fiscalCode == \"nobody\" { body }")).await;
    let (failing, _) = dispatcher.register(register("S3", "throw \"no record\"")).await;
    let shown = dispatcher.get(&format!("/webhooks/{reshaped}")).await;
    assert_eq!(
        shown["transform"],
        "#{ customer: body.payload.fiscalCode, service: attributes.serviceId, id: eventId }"
    );

    let event = json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}});
    let (_, preview) = dispatcher.call("POST", "/events/preview", Some(event.clone())).await;
    assert_eq!(preview["deliveries"].as_array().unwrap().len(), 1, "{preview}");
    assert_eq!(preview["deliveries"][0]["body"], json!({"customer": FC, "id": "preview", "service": "S1"}));
    let unsent: Vec<(&str, &str)> = preview["unsent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["webhookId"].as_str().unwrap(), u["status"].as_str().unwrap()))
        .collect();
    assert_eq!(unsent, [(filtered.as_str(), "filtered"), (failing.as_str(), "dead")], "{preview}");

    let published = dispatcher.publish(event).await;
    let event_id = published["id"].as_str().unwrap().to_owned();
    eventually("the transformed delivery", WAIT, || receivers.at("S1").len() == 1).await;
    let received = &receivers.at("S1")[0];
    assert_eq!(received.json(), json!({"customer": FC, "id": event_id, "service": "S1"}));
    assert!(received.verify(&secret), "the signature covers the transformed body");

    let entries = |id: String| {
        let dispatcher = &dispatcher;
        async move { dispatcher.get(&format!("/webhooks/{id}/deliveries")).await["items"].clone() }
    };
    eventually_async("both unsent deliveries logged", WAIT, || async {
        entries(filtered.clone()).await[0]["status"] == "filtered"
            && entries(failing.clone()).await[0]["status"] == "dead"
    })
    .await;
    let dead = &entries(failing.clone()).await[0];
    assert!(dead["deadReason"].as_str().unwrap().starts_with("transform failed: Runtime error: no record"), "{dead}");
    assert_eq!(dead["attempts"], json!([]), "no request was made");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((receivers.arrived("S2"), receivers.arrived("S3")), (0, 0));
    let health: Value = dispatcher.get(&format!("/webhooks/{filtered}/health")).await;
    assert_eq!(health["filtered"], 1, "{health}");

    // What a transform kept is never sent as it was logged (its body is the one before the transform).
    for kept in [entries(filtered.clone()).await[0]["id"].clone(), dead["id"].clone()] {
        let (status, refused) =
            dispatcher.call("POST", &format!("/deliveries/{}/retry", kept.as_str().unwrap()), None).await;
        assert_eq!(status, 409, "{refused}");
        assert!(refused["detail"].as_str().unwrap().contains("kept by its webhook's transform"), "{refused}");
    }
    let (status, recovered) = dispatcher
        .call("POST", &format!("/webhooks/{failing}/recover"), Some(json!({"since": "2000-01-01T00:00:00Z"})))
        .await;
    assert_eq!((status, &recovered["deliveries"]), (202, &json!(0)), "{recovered}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((receivers.arrived("S2"), receivers.arrived("S3")), (0, 0), "nothing was sent");
}

/// The portal's "try it" box: a transform not saved yet, tried on an event for given attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_is_tried_on_an_event_before_it_is_saved() {
    let dispatcher = Dispatcher::start("transform-try", &[], &[]);
    let try_it = |transform: &str, event: Value| json!({"transform": transform, "event": event, "attributes": {"serviceId": "S9"}});
    let completed =
        json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}});
    let (status, tried) = dispatcher
        .call(
            "POST",
            "/transforms/preview",
            Some(try_it("#{ fc: body.payload.fiscalCode, s: attributes.serviceId }", completed.clone())),
        )
        .await;
    assert_eq!(status, 200, "{tried}");
    assert_eq!(tried, json!([{"event": "service:subscribed", "outcome": "sent", "body": {"fc": FC, "s": "S9"}}]));
    let (_, nothing) = dispatcher.call("POST", "/transforms/preview", Some(try_it("()", completed.clone()))).await;
    assert_eq!(nothing[0]["outcome"], "filtered", "{nothing}");
    let (_, failed) = dispatcher.call("POST", "/transforms/preview", Some(try_it("body.payload.x.y", completed))).await;
    assert_eq!(failed[0]["outcome"], "dead", "{failed}");
    assert!(failed[0]["reason"].as_str().unwrap().starts_with("transform failed: "), "{failed}");

    let (status, refused) = dispatcher
        .call("POST", "/transforms/preview", Some(try_it("#{", json!({"name": "ping", "payload": {"name": ""}}))))
        .await;
    assert_eq!(status, 400, "{refused}");
    let paths: Vec<&str> =
        refused["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["transform", "event.payload.name"], "{refused}");
    assert_eq!(dispatcher.get("/info").await["counters"]["accepted"], 0, "nothing was published");
}
