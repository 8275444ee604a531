//! Enrichers, as the catalog file of `__integrations__/catalogs/downstream.json` uses them: what a rule needs
//! fetched, the request made from the event, what the answer must be, how the rule's payload and a webhook's
//! transform read it, and every mistake an enricher can hold, found at load. And payload fields made by
//! expressions: what they read, and how one that fails fails its event with the reason.

use dispatcher_core::events::enricher::Method;
use dispatcher_core::events::{file, Catalog, Enrichment, Event, Payload};
use dispatcher_core::template::Transform;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const DOWNSTREAM: &str = include_str!("../../../../__integrations__/catalogs/downstream.json");

fn env(name: &str) -> Option<String> {
    match name {
        "CTP_CUSTOMER_API" => Some("http://127.0.0.1:9/crm".to_owned()),
        "CTP_CUSTOMER_API_TOKEN" => Some("t0ken".to_owned()),
        "ORDERS_GRAPHQL_API" => Some("http://127.0.0.1:9/graphql".to_owned()),
        _ => None,
    }
}

fn downstream() -> &'static Catalog {
    file::load_in(DOWNSTREAM, &env).unwrap_or_else(|report| panic!("{report}")).leak()
}

/// An event of `catalog` with `fields` (which its file declares).
fn event(catalog: &'static Catalog, name: &str, fields: Value) -> Event {
    let spec = catalog.event(name).unwrap();
    let fields = fields
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| (spec.field(key).unwrap().name.as_str(), value.clone()))
        .collect();
    Event::new(spec, Payload::new(fields))
}

fn with(event: &Event, enrichment: Value) -> Event {
    let enrichment: Enrichment = serde_json::from_value(enrichment).unwrap();
    Event { enrichment: Some(Arc::new(enrichment)), ..event.clone() }
}

fn problems(file: Value) -> Vec<String> {
    file::load_in(&file.to_string(), &env).unwrap_err().problems().iter().map(ToString::to_string).collect()
}

#[test]
fn a_rule_s_enrichers_are_fetched_once_with_a_request_made_from_the_event() {
    let catalog = downstream();
    let created = event(catalog, "account:created", json!({"customerId": "C 1/2", "accountId": "A1"}));
    let needed = catalog.enrichers_for(&created);
    assert_eq!(needed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["customer"]);
    let call = needed[0].call(&created).unwrap();
    assert_eq!(
        (call.method, call.url.as_str(), call.body),
        (Method::Get, "http://127.0.0.1:9/crm/customers/C%201%2F2", None)
    );
    assert!(needed[0].auth.is_some(), "the bearer token read from the environment");

    let placed = event(catalog, "order:placed", json!({"orderId": "O-7"}));
    let order = catalog.enrichers_for(&placed)[0];
    let call = order.call(&placed).unwrap();
    assert_eq!((call.method, call.url.as_str()), (Method::Post, "http://127.0.0.1:9/graphql"));
    let body: Value = serde_json::from_str(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["variables"], json!({"id": "O-7"}));
    assert!(body["query"].as_str().unwrap().contains("order(id: $id)"));
    assert!(order.answer(Some(200), r#"{"errors": [{"message": "order O-7 not found"}]}"#).is_err());
    assert_eq!(
        call.cache_key("order"),
        order.call(&placed).unwrap().cache_key("order"),
        "the same request, the same key"
    );
}

#[test]
fn the_rule_s_payload_and_the_webhook_s_transform_read_what_was_fetched() {
    let catalog = downstream();
    let created =
        event(catalog, "subscription:created", json!({"customerId": "C1", "subscriptionId": "S1", "plan": "gold"}));
    let customer = json!({"customer": {"name": "Ada", "email": "ada@example.com"}});
    let hydrated = with(&created, customer.clone());
    catalog.check_enrichment(&hydrated).unwrap();
    let public: Vec<Event> = catalog.public_events(&hydrated, |_| &[]).map(|e| e.unwrap().into_owned()).collect();
    assert_eq!(
        serde_json::to_value(&public[0]).unwrap(),
        json!({"name": "customer:changed", "payload": {"trigger": "subscription:created", "customerId": "C1",
            "subscriptionId": "S1", "plan": "gold", "customer": {"name": "Ada", "email": "ada@example.com"}}})
    );
    let transform = Transform::compile("#{who: enrichment.customer.name, plan: body.payload.plan}").unwrap();
    let made = transform.apply_to_event(&public[0], &BTreeMap::new(), "evt", None).unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&made).unwrap(), json!({"who": "Ada", "plan": "gold"}));

    let placed = event(catalog, "order:placed", json!({"orderId": "O-7"}));
    let order = with(&placed, json!({"order": {"data": {"order": {"id": "O-7", "total": 12}}}}));
    catalog.check_enrichment(&order).unwrap();
    let public: Vec<Event> = catalog.public_events(&order, |_| &[]).map(|e| e.unwrap().into_owned()).collect();
    assert_eq!(public[0].payload.get("order"), Some(&json!({"id": "O-7", "total": 12})), "a path into the answer");
}

#[test]
fn an_answer_that_does_not_fit_the_payload_is_refused_before_the_rule_runs() {
    let catalog = downstream();
    let placed = event(catalog, "order:placed", json!({"orderId": "O-7"}));
    let missing = catalog.check_enrichment(&with(&placed, json!({"order": {"data": null}}))).unwrap_err();
    assert_eq!(missing, "order has no enrichment.order.data.order, which order:confirmed.order needs");
    let wrong = catalog.check_enrichment(&with(&placed, json!({"order": {"data": {"order": "O-7"}}}))).unwrap_err();
    assert!(wrong.starts_with("enrichment.order.data.order gives order:confirmed.order a wrong value"), "{wrong}");
    assert!(catalog.check_enrichment(&placed).is_err(), "nothing fetched");
}

#[test]
fn every_mistake_of_an_enricher_is_found_at_load_and_no_secret_is_quoted() {
    let found = problems(json!({
        "enrichers": {
            "no_url": {"method": "GET"},
            "bad": {"method": "PATCH", "url": "ftp://x/{event.payload.id}", "body": "#{", "cache": "soon",
                    "timeout": "1h", "headers": {"host": "x", "x-key": "${NOT_SET}", "x-line": "${CTP_CUSTOMER_API_TOKEN}\n"}, "extra": 1,
                    "auth": {"type": "bearer", "token": "${ALSO_NOT_SET}"}},
            "places": {"url": "http://x/{attributes.a}"},
            "reads": {"url": "https://x/{event.payload.optional}"},
            "bad name": {"url": "https://x/"},
        },
        "events": [
            {"name": "src", "audience": "non-public", "payload": {"properties": {
                "id": {"type": "string"}, "optional": {"type": "string"}}, "required": ["id"]}},
            {"name": "dst", "audience": "public", "payload": {"properties": {"o": {"type": "object"}}, "required": ["o"]}},
        ],
        "mappings": [
            {"from": "src", "to": "dst", "hydrate": ["reads", "nope"], "payload": {"o": "enrichment.other"}},
        ]
    }));
    assert!(found.iter().all(|p| !p.contains("t0ken")));
    assert_eq!(
        found,
        [
            "enrichers.no_url.url: is missing, expected a string",
            "enrichers.bad.extra: is not a key of an enricher; known keys: method, url, headers, body, auth, failWhen, cache, timeout",
            "enrichers.bad.method: PATCH is not GET or POST",
            "enrichers.bad.url: is not an http or https URL: the scheme \"ftp\" is not http or https",
            "enrichers.bad.headers.host: is not a header name an enricher may set",
            "enrichers.bad.headers.x-key: names ${NOT_SET}, an environment variable that is not set",
            "enrichers.bad.headers.x-line: is not a valid header value",
            "enrichers.bad.body: does not compile: Expecting '}' to end this object map literal (line 1, position 3)",
            "enrichers.bad.auth.token: names ${ALSO_NOT_SET}, an environment variable that is not set",
            "enrichers.bad.cache: \"soon\" is not a duration such as \"5m\": expected number at 0",
            "enrichers.bad.timeout: must be more than 0 and at most 30s",
            "enrichers.places.url: has {attributes.a}: a place is {event.name} or {event.payload.<field>}",
            "enrichers.bad name: an enricher's name is ASCII letters, digits and _",
            "mappings[0].hydrate[0]: reads's url reads {event.payload.optional}, which src does not always have",
            "mappings[0].hydrate[1]: nope is not an enricher of the file; enrichers: no_url, bad, places, reads, bad name",
            "mappings[0].payload.o: \"enrichment.other\" is not a path this rule can read; it reads event.name, event.payload.id, event.payload.optional, enrichment.reads[.<key>...], enrichment.nope[.<key>...]",
        ]
    );
}

#[test]
fn a_payload_field_may_be_an_expression_and_one_that_fails_fails_the_event_with_why() {
    let catalog = file::load(
        &json!({
            "events": [
                {"name": "person:joined", "audience": "non-public", "payload": {"properties": {
                    "first": {"type": "string"}, "last": {"type": "string"}, "n": {"type": "integer"}},
                    "required": ["first", "last", "n"]}},
                {"name": "member:added", "audience": "public", "payload": {"properties": {
                    "full": {"type": "string", "minLength": 1}, "twice": {"type": "integer"},
                    "team": {"type": "string"}, "label": {"type": "string"}}, "required": ["full"]}},
            ],
            "mappings": [{"from": "person:joined", "to": "member:added", "forEach": "team", "payload": {
                "full": "if event.payload.n != 100 { `${event.payload.first} ${event.payload.last}` }",
                "twice": "if event.payload.n == 7 { \"seven\" } else { event.payload.n * 2 }",
                "team": "attributes.team",
                "label": "`${attributes.team}:${event.name}`"}}]
        })
        .to_string(),
    )
    .unwrap_or_else(|report| panic!("{report}"))
    .leak();
    let joined = |n: i64| event(catalog, "person:joined", json!({"first": "Ada", "last": "Lovelace", "n": n}));
    let made = |n: i64| -> Vec<Result<Value, String>> {
        let event = joined(n);
        let teams = ["core".to_owned()];
        catalog.public_events(&event, |_| &teams[..]).map(|e| e.map(|e| serde_json::to_value(&*e).unwrap())).collect()
    };
    assert_eq!(
        made(3),
        [Ok(json!({"name": "member:added", "payload": {"full": "Ada Lovelace", "twice": 6, "team": "core",
            "label": "core:person:joined"}}))]
    );
    let [Err(wrong)] = &made(7)[..] else { panic!("{:?}", made(7)) };
    assert!(
        wrong.starts_with("the rule from person:joined to member:added: payload.twice made a wrong value"),
        "{wrong}"
    );
    let [Err(nothing)] = &made(100)[..] else { panic!() };
    assert_eq!(
        nothing,
        "the rule from person:joined to member:added: payload.full made nothing, but member:added.full is required"
    );
    let [Err(failed)] = &made(i64::MAX)[..] else { panic!() };
    assert!(failed.contains("payload.twice failed") && failed.contains("overflow"), "{failed}");

    let broken = problems(json!({
        "events": [
            {"name": "a", "audience": "non-public", "payload": {"properties": {"x": {"type": "string"}}, "required": ["x"]}},
            {"name": "b", "audience": "public", "payload": {"properties": {"y": {"type": "string"}}}},
        ],
        "mappings": [{"from": "a", "to": "b", "payload": {"y": "event.payload.x +"}}]
    }));
    assert_eq!(broken.len(), 1);
    assert!(broken[0].starts_with("mappings[0].payload.y: does not compile: "), "{broken:?}");
}

/// An event routed again (a redelivery, its next try) may be answered differently by its enricher: its
/// deliveries must keep their ids, or the integrator would get a second delivery it cannot tell apart.
#[test]
fn a_hydrated_event_s_identity_does_not_depend_on_the_answers() {
    let catalog = downstream();
    let identity = |account: &str, name: &str| {
        let created = event(catalog, "account:created", json!({"customerId": "C1", "accountId": account}));
        let hydrated = with(&created, json!({"customer": {"name": name}}));
        let public: Vec<Event> = catalog.public_events(&hydrated, |_| &[]).map(|e| e.unwrap().into_owned()).collect();
        assert_eq!(public[0].payload.get("customer"), Some(&json!({"name": name})));
        public[0].identity.clone().unwrap()
    };
    assert_eq!(identity("A1", "Ada"), identity("A1", "Ada Lovelace"));
    assert_ne!(identity("A1", "Ada"), identity("A2", "Ada"), "another account is another delivery");
    // Routed without what its enricher fetches (a tenant's preview, a test): told apart by its body.
    let plain = event(catalog, "order:placed", json!({"orderId": "O-1"}));
    let emitted = catalog.public_events(&plain, |_| &[]).next().unwrap().unwrap();
    assert_eq!(emitted.identity, None, "an event nothing was fetched for is told apart by its body");
}

/// Two rules from one event to one public event, alike but for an expression: their deliveries to one webhook
/// are two, so their identities differ (the same id would make the second a duplicate, dropped).
#[test]
fn two_rules_alike_but_for_an_expression_make_two_identities() {
    let catalog = file::load(
        &json!({
            "enrichers": {"e": {"url": "https://x.example/e/{event.payload.id}"}},
            "events": [
                {"name": "src", "audience": "non-public", "payload": {"properties": {
                    "id": {"type": "string", "minLength": 1}}, "required": ["id"]}},
                {"name": "dst", "audience": "public", "payload": {"properties": {
                    "id": {"type": "string"}, "kind": {"type": "string"}, "data": {"type": "object"}}}}
            ],
            "mappings": [
                {"from": "src", "to": "dst", "hydrate": ["e"],
                 "payload": {"id": "event.payload.id", "kind": "\"billing\"", "data": "enrichment.e"}},
                {"from": "src", "to": "dst", "hydrate": ["e"],
                 "payload": {"id": "event.payload.id", "kind": "\"shipping\"", "data": "enrichment.e"}}
            ]
        })
        .to_string(),
    )
    .unwrap_or_else(|report| panic!("{report}"))
    .leak();
    let hydrated = with(&event(catalog, "src", json!({"id": "1"})), json!({"e": {"x": 1}}));
    let public: Vec<Event> = catalog.public_events(&hydrated, |_| &[]).map(|e| e.unwrap().into_owned()).collect();
    assert_eq!(public.len(), 2);
    assert_ne!(public[0].identity, public[1].identity);
}
