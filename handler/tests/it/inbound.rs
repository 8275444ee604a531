//! Inbound webhooks end to end, against `handler local` as a separate process: requests signed by the providers'
//! own libraries (the npm `stripe` package and `@octokit/webhooks-methods`, `inbound_signatures::signed_by`, and
//! the `standardwebhooks` crate) posted to `/api/v1/in/{sourceId}`, and what the internal subscribers receive.

use crate::inbound_signatures::signed_by;
use crate::support::{eventually, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Posts `body` with `headers` to source `source`: the status and the answer.
async fn post_in(dispatcher: &Dispatcher, source: &str, headers: &HashMap<String, String>, body: &str) -> (u16, Value) {
    let mut request = dispatcher.client.post(format!("{}/in/{source}", dispatcher.api)).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// How many deliveries the dispatcher logged for `webhook`: what was published for it, sent or not yet.
async fn logged(dispatcher: &Dispatcher, webhook: &str) -> usize {
    dispatcher.get(&format!("/webhooks/{webhook}/deliveries?limit=100")).await["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_event_signed_by_stripe_is_published_once_and_every_bad_request_is_refused() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("inbound-stripe", &[], &[]);
    let source = json!({"id": "stripe", "verify": {"type": "stripe", "secrets": ["whsec_old", "whsec_new"]}});
    let (status, created) = dispatcher.call("POST", "/sources", Some(source)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["verify"], json!({"type": "stripe", "secretCount": 2}), "secrets are never shown");
    assert_eq!(created["endpoint"], "/api/v1/in/stripe");
    let subscriber = json!({"url": receivers.url("crm"), "subscriptions": ["stripe:*"]});
    let (crm, crm_secret) = dispatcher.register(subscriber).await;
    let only_paid = json!({"url": receivers.url("billing"), "subscriptions": ["stripe:invoice.paid"]});
    let (billing, _) = dispatcher.register(only_paid).await;

    let body = r#"{"id":"evt_1","object":"event","type":"customer.updated","data":{"object":{"id":"cus_1"}}}"#;
    let mut headers = signed_by("stripe", "whsec_new", body, Some(now()));
    headers.insert("x-correlation-id".into(), "corr-stripe-1".into());
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(post_in(&dispatcher, "stripe", &headers, body).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [202, 200, 200], "{answers:?}");
    assert_eq!(answers[0].1["event"], "stripe:customer.updated");
    assert_eq!((answers[1].1["repeat"].as_bool(), &answers[1].1["id"]), (Some(true), &answers[0].1["id"]));

    eventually("the subscriber receives the event", WAIT, || !receivers.at("crm").is_empty()).await;
    let received = &receivers.at("crm")[0];
    assert!(received.verify(&crm_secret), "signed for the subscriber as any other delivery");
    assert_eq!(
        received.json(),
        json!({"name": "stripe:customer.updated", "payload": serde_json::from_str::<Value>(body).unwrap()})
    );
    assert_eq!(received.header("x-correlation-id"), Some("corr-stripe-1"), "the provider request's correlation id");
    assert_eq!(logged(&dispatcher, &crm).await, 1, "published once");
    assert_eq!(logged(&dispatcher, &billing).await, 0, "another type of the same source");

    // Signed with the old secret of the rotation: verified, a new event.
    let other = body.replace("evt_1", "evt_2");
    let old = signed_by("stripe", "whsec_old", &other, Some(now()));
    assert_eq!(post_in(&dispatcher, "stripe", &old, &other).await.0, 202);

    let refused = [
        ("a byte changed", headers.clone(), body.replace("cus_1", "cus_2")),
        ("another secret", signed_by("stripe", "whsec_other", body, Some(now())), body.to_owned()),
        ("a stale timestamp", signed_by("stripe", "whsec_new", body, Some(now() - 600)), body.to_owned()),
        ("no signature", HashMap::new(), body.to_owned()),
    ];
    for (what, headers, body) in refused {
        let (status, problem) = post_in(&dispatcher, "stripe", &headers, &body).await;
        assert_eq!(status, 401, "{what}: {problem}");
        assert_eq!(
            problem["detail"], "the request's signature or credential does not verify for this source",
            "{what}: the same words whatever the reason"
        );
    }
    assert_eq!(post_in(&dispatcher, "nope", &headers, body).await.0, 404);
    let big = format!(r#"{{"id":"evt_big","pad":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    assert_eq!(post_in(&dispatcher, "stripe", &HashMap::new(), &big).await.0, 413);
    assert_eq!(logged(&dispatcher, &crm).await, 2, "nothing refused was published");

    let metrics = dispatcher.client.get(dispatcher.api.replace("/api/v1", "/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for (outcome, count) in [("published", 2), ("repeat", 2), ("bad-signature", 2), ("stale", 1), ("missing-header", 1)]
    {
        let line = format!("dispatcher_inbound_total{{outcome=\"{outcome}\",source=\"stripe\",otel_scope_name=\"dispatcher\"}} {count}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    assert!(!dispatcher.logs().contains("whsec_new"), "no secret in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_and_standard_webhooks_sources_verify_with_their_providers_libraries() {
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("inbound-github", &[], &[]);
    let github = json!({"id": "gh", "verify": {"type": "github", "secrets": ["gh-secret"]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(github)).await.0, 201);
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let partner = json!({"id": "partner", "verify": {"type": "standard-webhooks", "secrets": [whsec]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(partner)).await.0, 201);
    let (issues, _) =
        dispatcher.register(json!({"url": receivers.url("issues"), "subscriptions": ["gh:issues"]})).await;
    let (partners, _) =
        dispatcher.register(json!({"url": receivers.url("partner"), "subscriptions": ["partner:*"]})).await;

    let body = r#"{"action":"opened","issue":{"number":1}}"#;
    let mut headers = signed_by("github", "gh-secret", body, None);
    headers.insert("x-github-event".into(), "issues".into());
    headers.insert("x-github-delivery".into(), "delivery-1".into());
    assert_eq!(post_in(&dispatcher, "gh", &headers, body).await.0, 202);
    // The delivery id is not signed: the same body under another one is recognised as a repeat.
    headers.insert("x-github-delivery".into(), "delivery-forged".into());
    assert_eq!(post_in(&dispatcher, "gh", &headers, body).await.0, 200);
    headers.insert("x-github-event".into(), "push".into());
    let push = r#"{"ref":"refs/heads/main"}"#;
    let mut push_headers = signed_by("github", "gh-secret", push, None);
    push_headers.insert("x-github-event".into(), "push".into());
    assert_eq!(post_in(&dispatcher, "gh", &push_headers, push).await.0, 202);
    push_headers.remove("x-github-event");
    assert_eq!(post_in(&dispatcher, "gh", &push_headers, push).await.0, 401, "no event type");

    let signed = |id: &str, body: &str, at: i64| {
        let signature = standardwebhooks::Webhook::new(whsec).unwrap().sign(id, at, body.as_bytes()).unwrap();
        HashMap::from([
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), at.to_string()),
            ("webhook-signature".to_owned(), signature),
        ])
    };
    let confirmed = r#"{"type":"service.confirmed","data":{"serviceId":"S1"}}"#;
    assert_eq!(post_in(&dispatcher, "partner", &signed("msg_1", confirmed, now()), confirmed).await.0, 202);
    assert_eq!(post_in(&dispatcher, "partner", &signed("msg_1", confirmed, now()), confirmed).await.0, 200);
    assert_eq!(post_in(&dispatcher, "partner", &signed("msg_2", confirmed, now() - 400), confirmed).await.0, 401);

    eventually("both subscribers receive", WAIT, || {
        receivers.at("issues").len() == 1 && receivers.at("partner").len() == 1
    })
    .await;
    assert_eq!(receivers.at("issues")[0].json()["name"], "gh:issues");
    assert_eq!(receivers.at("partner")[0].json()["name"], "partner:service.confirmed");
    assert_eq!((logged(&dispatcher, &issues).await, logged(&dispatcher, &partners).await), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_the_operators_and_their_secrets_are_sealed_at_rest() {
    let key = "tenants-operator-key-0123456789";
    let encryption = "kJtmpLq0W7nNq2ZCpJ3f1a3pUu0m5xvVQ6g2yQmIY6Q=";
    let env = [("DISPATCHER_API_KEY", key), ("DISPATCHER_ENCRYPTION_KEY", encryption)];
    let dispatcher = Dispatcher::start("inbound-sealed", &[], &env);
    let source =
        json!({"id": "shop", "verify": {"type": "api-key", "header": "x-shop-key", "secrets": ["shop-s3cret-key"]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(source.clone())).await.0, 201);
    assert_eq!(dispatcher.call("POST", "/sources", Some(source)).await.0, 409, "created once");
    // A replacement without secrets keeps the stored ones.
    let disabled = json!({"verify": {"type": "api-key", "header": "x-shop-key"}, "disabled": true});
    let (status, replaced) = dispatcher.call("PUT", "/sources/shop", Some(disabled)).await;
    assert_eq!((status, &replaced["verify"]["secretCount"], &replaced["disabled"]), (200, &json!(1), &json!(true)));
    let retyped = json!({"verify": {"type": "basic", "username": "shop"}});
    let (status, problem) = dispatcher.call("PUT", "/sources/shop", Some(retyped)).await;
    assert_eq!((status, &problem["problems"][0]["path"]), (422, &json!("verify.secrets")), "{problem}");
    let order = r#"{"type":"order.paid","id":"o1"}"#;
    let same_id = r#"{"type":"order.paid","id":"o1","sentAt":"later"}"#;
    let with_key = HashMap::from([("x-shop-key".to_owned(), "shop-s3cret-key".to_owned())]);
    assert_eq!(post_in(&dispatcher, "shop", &with_key, order).await.0, 404, "a disabled source is not told apart");
    let enabled = json!({"verify": {"type": "api-key", "header": "x-shop-key"}});
    assert_eq!(dispatcher.call("PUT", "/sources/shop", Some(enabled)).await.0, 200);
    assert_eq!(post_in(&dispatcher, "shop", &with_key, order).await.0, 202, "the kept secret verifies");
    // The credential vouches for the whole request: the id in the body tells a repeat, whatever else changed.
    let (status, repeat) = post_in(&dispatcher, "shop", &with_key, same_id).await;
    assert_eq!((status, &repeat["repeat"]), (200, &json!(true)), "{repeat}");
    let (status, invalid) =
        dispatcher.call("POST", "/sources", Some(json!({"id": "a:b", "verify": {"type": "md5"}}))).await;
    assert_eq!((status, invalid["type"].as_str()), (400, Some("urn:dispatcher:problem:invalid-source")), "{invalid}");

    let files = std::fs::read_dir(&dispatcher.data_dir).unwrap().flatten().map(|e| std::fs::read(e.path()).unwrap());
    assert!(
        files.into_iter().all(|bytes| !String::from_utf8_lossy(&bytes).contains("shop-s3cret-key")),
        "sealed at rest"
    );
    assert!(!dispatcher.get("/sources").await.to_string().contains("s3cret"));

    // In a namespace of the catalog's events, only a source of that name makes a subscription a source's.
    let typo = json!({"url": "https://ops.example/hook", "subscriptions": ["profile:completedd"]});
    let (status, problem) = dispatcher.call("POST", "/webhooks", Some(typo)).await;
    assert_eq!((status, &problem["problems"][0]["path"]), (422, &json!("subscriptions[0]")), "{problem}");
    // A tenant neither manages sources nor subscribes to what they receive.
    let tenant = json!({"id": "acme", "name": "Acme", "grants": {"serviceId": ["S1"]}});
    assert_eq!(dispatcher.call("POST", "/tenants", Some(tenant)).await.0, 201);
    let (_, token) = dispatcher.call("POST", "/tenants/acme/tokens", Some(json!({"name": "ci"}))).await;
    let token = token["token"].as_str().unwrap().to_owned();
    let as_tenant = |method: &str, path: &str, body: Value| {
        let request = dispatcher.client.request(method.parse().unwrap(), format!("{}{path}", dispatcher.api));
        request.bearer_auth(&token).json(&body).send()
    };
    assert_eq!(as_tenant("GET", "/sources", Value::Null).await.unwrap().status(), 403);
    let webhook =
        json!({"url": "https://acme.example/hook", "subscriptions": ["shop:*"], "attributes": {"serviceId": "S1"}});
    let answer = as_tenant("POST", "/webhooks", webhook).await.unwrap();
    assert_eq!(answer.status(), 422);
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["problems"][0]["path"], "subscriptions[0]", "{problem}");
    assert_eq!(dispatcher.call("DELETE", "/sources/shop", None).await.0, 204);
    assert_eq!(post_in(&dispatcher, "shop", &with_key, order).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inbound_webhook_answered_2xx_before_a_kill_9_is_delivered_after_the_restart() {
    let receivers = Receivers::start().await;
    let mut dispatcher = Dispatcher::start("inbound-kill", &[], &[]);
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source = json!({"id": "burst", "verify": {"type": "standard-webhooks", "secrets": [whsec]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(source)).await.0, 201);
    dispatcher.register(json!({"url": receivers.url("burst"), "subscriptions": ["burst:*"]})).await;
    // Sixteen providers at once: many requests are in the window between being taken and being answered.
    let next = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (client, url, next) = (dispatcher.client.clone(), format!("{}/in/burst", dispatcher.api), next.clone());
            tokio::spawn(async move { send_until_refused(&client, &url, whsec, &next).await })
        })
        .collect();
    eventually("a burst under way", WAIT, || receivers.at("burst").len() >= 20).await;
    dispatcher.kill_9();
    let mut answered = BTreeSet::new();
    for sender in senders {
        answered.extend(sender.await.unwrap());
    }
    assert!(answered.len() >= 20 && answered.len() < 2_000, "killed mid-burst: {} answered", answered.len());
    dispatcher.restart();
    let delivered = || -> BTreeSet<u64> {
        receivers.at("burst").iter().map(|r| r.json()["payload"]["n"].as_u64().unwrap()).collect()
    };
    eventually("every event answered 2xx is delivered", WAIT, || answered.is_subset(&delivered())).await;
}

/// Posts burst events, each number once among the senders sharing `next`, until one is not answered 2xx (the
/// process is gone); the numbers answered 2xx.
async fn send_until_refused(client: &reqwest::Client, url: &str, whsec: &str, next: &AtomicU64) -> Vec<u64> {
    let mut answered = Vec::new();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= 2_000 {
            return answered;
        }
        {
            let id = format!("msg_{n}");
            let body = format!(r#"{{"type":"tick","n":{n}}}"#);
            let signature = standardwebhooks::Webhook::new(whsec).unwrap().sign(&id, now(), body.as_bytes()).unwrap();
            let request = client
                .post(url)
                .header("webhook-id", &id)
                .header("webhook-timestamp", now().to_string())
                .header("webhook-signature", signature)
                .body(body);
            match request.send().await {
                Ok(response) if response.status().is_success() => answered.push(n),
                _ => return answered,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_event_the_catalog_declares_is_validated_and_mapped_by_its_rules() {
    let receivers = Receivers::start().await;
    // The built-in catalog, and an integrator's answer mapped to a public event of the operator's.
    let mut catalog: Value = serde_json::from_str(dispatcher_core::events::catalog::BUILT_IN).unwrap();
    let events = catalog["events"].as_array_mut().unwrap();
    events.push(json!({"name": "crm:service.confirmed", "audience": "non-public",
        "description": "An integrator confirms a subscription it received.",
        "payload": {"properties": {"type": {"type": "string"}, "data": {"type": "object"}}, "required": ["type", "data"]}}));
    events.push(json!({"name": "service:confirmed", "audience": "public", "requiredAttributes": ["serviceId"],
        "description": "An integrator confirmed a subscription.",
        "payload": {"properties": {"serviceId": {"type": "string", "minLength": 1}, "confirms": {"type": "string"}},
            "required": ["serviceId"]}}));
    catalog["mappings"].as_array_mut().unwrap().push(json!({"from": "crm:service.confirmed", "to": "service:confirmed",
        "payload": {"serviceId": "event.payload.data[\"serviceId\"]", "confirms": "event.payload.data[\"confirms\"]"}}));
    let dir = crate::support::temp_dir("inbound-catalog-file");
    let file = dir.join("catalog.json");
    std::fs::write(&file, catalog.to_string()).unwrap();
    let dispatcher = Dispatcher::start("inbound-catalog", &["--catalog", file.to_str().unwrap()], &[]);
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let source = json!({"id": "crm", "verify": {"type": "standard-webhooks", "secrets": [whsec]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(source)).await.0, 201);
    let confirmed = json!({"url": receivers.url("confirmed"), "subscriptions": ["service:confirmed"], "attributes": {"serviceId": "S1"}});
    dispatcher.register(confirmed).await;
    // The catalog owns the source's declared name: `crm:*` takes what it does not declare.
    let (raw, _) = dispatcher.register(json!({"url": receivers.url("raw"), "subscriptions": ["crm:*"]})).await;
    let signed = |id: &str, body: &str| {
        let signature = standardwebhooks::Webhook::new(whsec).unwrap().sign(id, now(), body.as_bytes()).unwrap();
        HashMap::from([
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), now().to_string()),
            ("webhook-signature".to_owned(), signature),
        ])
    };
    let answer = r#"{"type":"service.confirmed","data":{"serviceId":"S1","confirms":"msg_42"}}"#;
    assert_eq!(post_in(&dispatcher, "crm", &signed("c1", answer), answer).await.0, 202);
    eventually("the mapped event arrives", WAIT, || !receivers.at("confirmed").is_empty()).await;
    assert_eq!(
        receivers.at("confirmed")[0].json(),
        json!({"name": "service:confirmed", "payload": {"confirms": "msg_42"}})
    );
    // What the catalog's schema refuses is refused, with every problem, and recorded.
    let incomplete = r#"{"type":"service.confirmed"}"#;
    let (status, problem) = post_in(&dispatcher, "crm", &signed("c2", incomplete), incomplete).await;
    assert_eq!((status, problem["problems"][0]["path"].as_str()), (400, Some("payload.data")), "{problem}");
    let rejected = dispatcher.get("/events/rejected").await;
    assert!(rejected.to_string().contains("payload.data"), "{rejected}");
    // A rule that fails on what the provider sent is the operator's to read: the provider's request was taken.
    let wrong = r#"{"type":"service.confirmed","data":{"serviceId":5}}"#;
    let (status, answer) = post_in(&dispatcher, "crm", &signed("c4", wrong), wrong).await;
    assert_eq!((status, answer["repeat"].as_bool()), (202, Some(false)), "{answer}");
    let rejected = dispatcher.get("/events/rejected").await;
    assert!(rejected.to_string().contains("made a wrong value"), "recorded as rejected: {rejected}");
    let other = r#"{"type":"service.revoked","data":{}}"#;
    assert_eq!(post_in(&dispatcher, "crm", &signed("c3", other), other).await.0, 202);
    eventually("an undeclared type goes as it came", WAIT, || !receivers.at("raw").is_empty()).await;
    assert_eq!(receivers.at("raw")[0].json()["name"], "crm:service.revoked");
    assert_eq!(logged(&dispatcher, &raw).await, 1, "the declared event is not delivered as itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_answered_before_the_enrichers_of_its_event_fetch() {
    let receivers = Receivers::start().await;
    // The CRM's API answers after 3 s.
    receivers.behave("crm-api", crate::support::Behaviour { delay: Duration::from_secs(3), ..Default::default() });
    let mut catalog: Value = serde_json::from_str(dispatcher_core::events::catalog::BUILT_IN).unwrap();
    catalog["events"].as_array_mut().unwrap().push(json!({"name": "crm:service.confirmed", "audience": "non-public",
        "description": "An integrator confirms a subscription.",
        "payload": {"properties": {"serviceId": {"type": "string", "minLength": 1}}, "required": ["serviceId"]}}));
    catalog["enrichers"] = json!({"crm": {"method": "POST", "url": receivers.url("crm-api"), "timeout": "5s"}});
    catalog["mappings"].as_array_mut().unwrap().push(json!({"from": "crm:service.confirmed", "to": "ping",
        "hydrate": ["crm"], "payload": {"name": "event.payload.serviceId"}}));
    let file = crate::support::temp_dir("inbound-hydrated-file").join("catalog.json");
    std::fs::write(&file, catalog.to_string()).unwrap();
    let dispatcher = Dispatcher::start("inbound-hydrated", &["--catalog", file.to_str().unwrap()], &[]);
    let source = json!({"id": "crm", "verify": {"type": "api-key", "header": "x-crm-key", "secrets": ["crm-key"]}});
    assert_eq!(dispatcher.call("POST", "/sources", Some(source)).await.0, 201);
    let key = HashMap::from([("x-crm-key".to_owned(), "crm-key".to_owned())]);
    let body = r#"{"type":"service.confirmed","id":"c-1","serviceId":"S1"}"#;
    assert_eq!(post_in(&dispatcher, "crm", &key, body).await.0, 202);
    assert!(receivers.at("crm-api").is_empty(), "answered before the enricher answered");
    // Fetched afterwards, by the waiting events' loop (the stand-in's empty answer is no JSON: tried again).
    eventually("the enricher is asked", WAIT, || receivers.arrived("crm-api") >= 1).await;
}
