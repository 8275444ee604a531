//! Enrichers against real HTTP stand-ins, with `handler local` on the catalog of
//! `__integrations__/catalogs/downstream.json`: the customer's details fetched once (credentials from the
//! environment, the correlation id carried), used again from the cache, and read by a webhook's transform; a
//! GraphQL API answering 200 with `errors` tried on the retry schedule and then rejected with that reason,
//! nothing delivered; and an event waiting for its next try survives kill -9.

use crate::support::{eventually, eventually_async, Dispatcher, Receivers};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../__integrations__/catalogs/downstream.json");

/// The customer API and the orders GraphQL API, with what each was asked.
#[derive(Clone, Default)]
struct StandIn {
    asked: Arc<Mutex<Vec<(String, HeaderMap, Value)>>>,
    down: Arc<AtomicBool>,
}

impl StandIn {
    async fn start(&self) -> String {
        let app = Router::new()
            .route("/crm/customers/{id}", get(customer))
            .route("/graphql", post(graphql))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    fn asked(&self, what: &str) -> Vec<(String, HeaderMap, Value)> {
        self.asked.lock().unwrap().iter().filter(|(path, _, _)| path.contains(what)).cloned().collect()
    }
}

async fn customer(State(s): State<StandIn>, Path(id): Path<String>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    s.asked.lock().unwrap().push((format!("customers/{id}"), headers.clone(), Value::Null));
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "down for maintenance"})));
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer t0ken") {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    }
    // The version changes at every request: an answer that differs each time the event is hydrated.
    let version = s.asked(&format!("customers/{id}")).len();
    let customer =
        json!({"id": id, "name": format!("Customer {id}"), "email": format!("{id}@example.com"), "version": version});
    (StatusCode::OK, Json(customer))
}

async fn graphql(State(s): State<StandIn>, headers: HeaderMap, Json(query): Json<Value>) -> Json<Value> {
    s.asked.lock().unwrap().push(("graphql".to_owned(), headers, query.clone()));
    match query["variables"]["id"].as_str() {
        Some("O-1") => Json(json!({"data": {"order": {"id": "O-1", "total": 12.5, "currency": "EUR"}}})),
        other => Json(json!({"data": null, "errors": [{"message": format!("order {other:?} not found")}]})),
    }
}

fn dispatcher(name: &str, schedule: &str, apis: &str) -> Dispatcher {
    dispatcher_on(name, schedule, apis, CATALOG)
}

fn dispatcher_on(name: &str, schedule: &str, apis: &str, catalog: &str) -> Dispatcher {
    let (crm, graphql) = (format!("{apis}/crm"), format!("{apis}/graphql"));
    Dispatcher::start(
        name,
        &["--retry-schedule", schedule],
        &[
            ("DISPATCHER_CATALOG", catalog),
            ("CTP_CUSTOMER_API", &crm),
            ("CTP_CUSTOMER_API_TOKEN", "t0ken"),
            ("ORDERS_GRAPHQL_API", &graphql),
        ],
    )
}

async fn publish(dispatcher: &Dispatcher, event: Value, correlation_id: &str) -> Value {
    let response = dispatcher
        .client
        .post(format!("{}/events", dispatcher.api))
        .header("x-correlation-id", correlation_id)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_are_fetched_once_cached_and_read_by_the_rule_and_the_transform() {
    let (stand_in, receivers) = (StandIn::default(), Receivers::start().await);
    let dispatcher = dispatcher("enrichment-hydrated", "100ms", &stand_in.start().await);
    let transform = "#{customerNumber: body.payload.customerId, name: enrichment.customer.name, \
                     action: if body.payload.trigger.ends_with(\":created\") { \"CREATE\" } else { \"UPDATE\" }}";
    dispatcher
        .register(json!({"url": receivers.url("cc"), "subscriptions": ["customer:changed"], "transform": transform}))
        .await;
    dispatcher.register(json!({"url": receivers.url("combined"), "subscriptions": ["customer:changed"]})).await;

    let created = json!({"name": "account:created", "payload": {"customerId": "C/1", "accountId": "A1"}});
    assert_eq!(publish(&dispatcher, created, "corr-1").await["deliveries"], 2);
    eventually("both deliveries", Duration::from_secs(20), || {
        receivers.at("cc").len() + receivers.at("combined").len() == 2
    })
    .await;
    assert_eq!(
        receivers.at("cc")[0].json(),
        json!({"customerNumber": "C/1", "name": "Customer C/1", "action": "CREATE"})
    );
    assert_eq!(
        receivers.at("combined")[0].json(),
        json!({"name": "customer:changed", "payload": {"trigger": "account:created", "customerId": "C/1", "accountId": "A1",
            "customer": {"id": "C/1", "name": "Customer C/1", "email": "C/1@example.com", "version": 1}}})
    );
    let asked = stand_in.asked("customers/");
    assert_eq!(asked.len(), 1, "once per event, not once per webhook");
    assert_eq!(asked[0].0, "customers/C/1", "the id percent-encoded into one segment, decoded by the API");
    assert_eq!(asked[0].1.get("x-correlation-id").unwrap(), "corr-1");
    assert_eq!(receivers.at("cc")[0].header("x-correlation-id"), Some("corr-1"));

    let updated = json!({"name": "account:updated", "payload": {"customerId": "C/1", "accountId": "A1"}});
    publish(&dispatcher, updated, "corr-2").await;
    eventually("the update", Duration::from_secs(20), || receivers.at("cc").len() == 2).await;
    assert_eq!(receivers.at("cc")[1].json()["action"], "UPDATE");
    assert_eq!(stand_in.asked("customers/").len(), 1, "the answer came from the cache");
    let metrics = dispatcher.client.get(dispatcher.api.replace("/api/v1", "/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let count = |outcome: &str| {
        let start = format!(r#"dispatcher_enrichments_total{{enricher="customer",outcome="{outcome}""#);
        metrics.lines().find(|l| l.starts_with(&start)).and_then(|l| l.rsplit(' ').next()).map(str::to_owned)
    };
    assert_eq!((count("fetched").as_deref(), count("cached").as_deref()), (Some("1"), Some("1")), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_answer_with_errors_is_retried_then_rejected_and_nothing_is_delivered() {
    let (stand_in, receivers) = (StandIn::default(), Receivers::start().await);
    let dispatcher = dispatcher("enrichment-graphql", "100ms,100ms", &stand_in.start().await);
    dispatcher.register(json!({"url": receivers.url("orders"), "subscriptions": ["order:confirmed"]})).await;

    let published = publish(&dispatcher, json!({"name": "order:placed", "payload": {"orderId": "O-404"}}), "c").await;
    assert!(published["deliveries"].is_null(), "waiting for its next try: {published}");
    let id = published["id"].as_str().unwrap().to_owned();
    eventually_async("the event rejected", Duration::from_secs(20), || async {
        let rejected = dispatcher.get("/events/rejected").await;
        rejected["items"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str())
    })
    .await;
    assert!(receivers.at("orders").is_empty(), "nothing delivered without its data");
    let rejected = dispatcher.get("/events/rejected").await;
    let reason = rejected["items"][0]["problems"][0].to_string();
    assert!(
        reason.contains("enricher order: the answer matches failWhen")
            && reason.contains("not found")
            && reason.contains("tried 3 times"),
        "{rejected}"
    );
    let asked = stand_in.asked("graphql");
    assert_eq!(asked.len(), 3, "the first try and the two of the schedule");
    assert_eq!(asked[0].2["variables"], json!({"id": "O-404"}));
    assert_eq!(asked[0].1.get("content-type").unwrap(), "application/json");

    // A failure trying again cannot cure is not waited for: rejected at once, the publisher told why.
    let climbing = json!({"name": "account:created", "payload": {"customerId": "..", "accountId": "A1"}});
    let (status, refused) = dispatcher.call("POST", "/events", Some(climbing)).await;
    assert_eq!(status, 400, "{refused}");
    let text = refused.to_string();
    assert!(text.contains("would change the path") && text.contains("not tried again"), "{refused}");
    assert!(stand_in.asked("customers/").is_empty());

    publish(&dispatcher, json!({"name": "order:placed", "payload": {"orderId": "O-1"}}), "c").await;
    eventually("the found order", Duration::from_secs(20), || receivers.at("orders").len() == 1).await;
    assert_eq!(
        receivers.at("orders")[0].json()["payload"]["order"],
        json!({"id": "O-1", "total": 12.5, "currency": "EUR"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_waiting_for_its_enricher_survives_kill_9() {
    let (stand_in, receivers) = (StandIn::default(), Receivers::start().await);
    let mut dispatcher = dispatcher("enrichment-kill", "2s,2s,2s,2s,2s", &stand_in.start().await);
    dispatcher.register(json!({"url": receivers.url("cc"), "subscriptions": ["customer:changed"]})).await;
    stand_in.down.store(true, Ordering::SeqCst);
    let created = json!({"name": "subscription:created", "payload": {"customerId": "C2", "subscriptionId": "S2", "plan": "gold"}});
    publish(&dispatcher, created, "corr-k").await;
    eventually("the first try", Duration::from_secs(20), || stand_in.asked("customers/C2").len() == 1).await;
    dispatcher.kill_9();
    stand_in.down.store(false, Ordering::SeqCst);
    dispatcher.restart();
    eventually("the delivery after the restart", Duration::from_secs(20), || receivers.at("cc").len() == 1).await;
    let body = receivers.at("cc")[0].json();
    assert_eq!(body["payload"]["customer"]["name"], "Customer C2", "{body}");
    assert_eq!(receivers.at("cc")[0].header("x-correlation-id"), Some("corr-k"));
}

/// Published again under its key (the producer did not hear the 202) after the customer API's answer changed:
/// the deliveries keep their ids, so the webhook gets the event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_hydrated_again_keeps_its_delivery_ids() {
    let (stand_in, receivers) = (StandIn::default(), Receivers::start().await);
    let uncached = std::fs::read_to_string(CATALOG).unwrap().replace(r#""cache": "30s","#, "");
    let dispatcher = dispatcher_on("enrichment-again", "100ms", &stand_in.start().await, &uncached);
    dispatcher.register(json!({"url": receivers.url("cc"), "subscriptions": ["customer:changed"]})).await;
    let created = json!({"name": "account:created", "payload": {"customerId": "C3", "accountId": "A3"}});
    for _ in 0..2 {
        let response = dispatcher
            .client
            .post(format!("{}/events", dispatcher.api))
            .header("idempotency-key", "evt-C3-A3")
            .json(&created)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    assert_eq!(stand_in.asked("customers/C3").len(), 2, "hydrated twice, answered differently");
    eventually("the delivery", Duration::from_secs(20), || receivers.at("cc").len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receivers.at("cc").len(), 1, "one delivery, not one per hydration");
}

/// What the operator's enrichers fetch is the operator's: a tenant's transform reads only what the rule put in
/// the body, and a tenant's preview does not make the APIs answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_never_sees_more_of_what_enrichers_fetched_than_the_body_holds() {
    let (stand_in, receivers) = (StandIn::default(), Receivers::start().await);
    let apis = stand_in.start().await;
    let (crm, graphql) = (format!("{apis}/crm"), format!("{apis}/graphql"));
    let dispatcher = Dispatcher::start(
        "enrichment-tenant",
        &["--allowed-networks", "127.0.0.0/8"],
        &[
            ("DISPATCHER_CATALOG", CATALOG),
            ("CTP_CUSTOMER_API", &crm),
            ("CTP_CUSTOMER_API_TOKEN", "t0ken"),
            ("ORDERS_GRAPHQL_API", &graphql),
            ("DISPATCHER_API_KEY", "enrichment-operator-key-0123456789"),
        ],
    );
    let (status, _) =
        dispatcher.call("POST", "/tenants", Some(json!({"id": "tn", "name": "T", "grants": {"target": ["t1"]}}))).await;
    assert_eq!(status, 201);
    let (status, issued) = dispatcher.call("POST", "/tenants/tn/tokens", Some(json!({"name": "ci"}))).await;
    assert_eq!(status, 201, "{issued}");
    let token = issued["token"].as_str().unwrap().to_owned();
    let as_tenant = |path: &str, body: Value| {
        dispatcher.client.post(format!("{}{path}", dispatcher.api)).bearer_auth(&token).json(&body).send()
    };
    let transform = "#{fetched: enrichment.len(), name: body.payload.customer.name}";
    let hook = |path: &str| {
        json!({"url": receivers.url(path), "subscriptions": ["customer:changed"], "attributes": {"target": "t1"},
               "transform": transform})
    };
    assert_eq!(as_tenant("/webhooks", hook("tenant")).await.unwrap().status(), 201);
    dispatcher.register(hook("operator")).await;

    let created = json!({"name": "account:created", "payload": {"customerId": "C4", "accountId": "A4"}});
    let preview = as_tenant("/events/preview", created.clone()).await.unwrap();
    let preview: Value = preview.json().await.unwrap();
    assert_eq!(preview["failed"], "this event's enrichers run for the operator's previews only", "{preview}");
    assert!(stand_in.asked("customers/").is_empty(), "a tenant's preview asks nothing");

    dispatcher.publish(created).await;
    eventually("both deliveries", Duration::from_secs(20), || {
        receivers.at("tenant").len() == 1 && receivers.at("operator").len() == 1
    })
    .await;
    assert_eq!(receivers.at("operator")[0].json(), json!({"fetched": 1, "name": "Customer C4"}));
    assert_eq!(receivers.at("tenant")[0].json(), json!({"fetched": 0, "name": "Customer C4"}), "the body's, not more");
}

/// An enricher asks with the credentials webhooks use: here OAuth 2.0 client credentials from a real OpenID
/// provider (`oidc-provider`), the API checking each token by introspection; and an API that does not answer
/// within the enricher's timeout makes the event wait, then rejects it with that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enricher_asks_with_oauth2_tokens_and_gives_up_on_an_api_that_hangs() {
    let provider = crate::support::oidc::Provider::start(&[]).unwrap();
    let introspection = format!("{}/token/introspection", provider.issuer);
    let app = Router::new()
        .route(
            "/profiles/{id}",
            get(move |Path(id): Path<String>, headers: HeaderMap| {
                let introspection = introspection.clone();
                async move {
                    let token = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    let token = token.strip_prefix("Bearer ").unwrap_or_default().to_owned();
                    let client = dispatcher::adapters::tls::client().unwrap();
                    let answer = client
                        .post(&introspection)
                        .basic_auth("dispatcher", Some("dispatcher-s3cret"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!("token={token}"))
                        .send()
                        .await
                        .unwrap();
                    match answer.json::<Value>().await.unwrap()["active"] == json!(true) {
                        true => (StatusCode::OK, Json(json!({"id": id, "plan": "gold"}))),
                        false => (StatusCode::UNAUTHORIZED, Json(json!({}))),
                    }
                }
            }),
        )
        .route(
            "/hangs/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(json!({}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let catalog = json!({
        "enrichers": {
            "profile": {"url": "${PROFILES_API}/profiles/{event.payload.id}", "timeout": "3s",
                        "auth": {"type": "oauth2", "issuer": "${PROFILES_ISSUER}", "clientId": "dispatcher",
                                 "clientSecret": "${PROFILES_SECRET}", "scope": "deliveries"}},
            "hanging": {"url": "${PROFILES_API}/hangs/{event.payload.id}", "timeout": "200ms"}
        },
        "events": [
            {"name": "user:changed", "audience": "non-public", "payload": {"properties": {
                "id": {"type": "string", "minLength": 1}}, "required": ["id"]}},
            {"name": "user:stuck", "audience": "non-public", "payload": {"properties": {
                "id": {"type": "string", "minLength": 1}}, "required": ["id"]}},
            {"name": "user:updated", "audience": "public", "payload": {"properties": {
                "id": {"type": "string", "minLength": 1}, "profile": {"type": "object"}}, "required": ["id", "profile"]}}
        ],
        "mappings": [
            {"from": "user:changed", "to": "user:updated", "hydrate": ["profile"],
             "payload": {"id": "event.payload.id", "profile": "enrichment.profile"}},
            {"from": "user:stuck", "to": "user:updated", "hydrate": ["hanging"],
             "payload": {"id": "event.payload.id", "profile": "enrichment.hanging"}}
        ]
    })
    .to_string();
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start(
        "enrichment-oauth2",
        &["--retry-schedule", "100ms"],
        &[
            ("DISPATCHER_CATALOG", &catalog),
            ("PROFILES_API", &api),
            ("PROFILES_ISSUER", &provider.issuer),
            ("PROFILES_SECRET", "dispatcher-s3cret"),
        ],
    );
    dispatcher.register(json!({"url": receivers.url("users"), "subscriptions": ["user:updated"]})).await;
    assert_eq!(dispatcher.publish(json!({"name": "user:changed", "payload": {"id": "u1"}})).await["deliveries"], 1);
    eventually("the hydrated delivery", Duration::from_secs(20), || receivers.at("users").len() == 1).await;
    assert_eq!(receivers.at("users")[0].json()["payload"]["profile"], json!({"id": "u1", "plan": "gold"}));
    assert_eq!(provider.tokens().len(), 1, "one token from the provider");

    let stuck = dispatcher.publish(json!({"name": "user:stuck", "payload": {"id": "u2"}})).await;
    let id = stuck["id"].as_str().unwrap().to_owned();
    eventually_async("the stuck event rejected", Duration::from_secs(20), || async {
        let rejected = dispatcher.get("/events/rejected").await;
        rejected["items"].as_array().unwrap().iter().any(|r| r["id"] == id.as_str())
    })
    .await;
    let rejected = dispatcher.get("/events/rejected").await.to_string();
    assert!(rejected.contains("enricher hanging: no answer within 200ms (tried 2 times)"), "{rejected}");
    assert!(!dispatcher.logs().contains("dispatcher-s3cret"), "the client secret stays out of the logs");
}
