//! Tenants, on both runtimes (`handler local`, and `handler serve` on the local Cosmos DB server): every
//! operation of the OpenAPI document under every kind of credential answers what the tenants' contract says
//! (the isolation matrix), and no answer to one tenant carries another's URL, secret or name. Then, locally:
//! grants decide routing (and narrowing one stops it at once), a tenant's targets are held to the SSRF guard,
//! `maxWebhooks` is a limit, and every change is in the audit log without a credential.

use crate::functions_serve::{cosmos_store, delivering_to, service_bus, start_serve, Handler};
use crate::support::cosmos::{start_cosmos_server, CosmosServer};
use crate::support::servicebus::{start_servicebus_broker, ServiceBusBroker};
use crate::support::{eventually, eventually_async, Dispatcher, Receivers};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const OPERATOR_KEY: &str = "tenants-operator-key-0123456789";

/// Who calls: the columns of the matrix, in order.
const CALLERS: [&str; 8] = ["operator", "A", "B", "A read-only", "A portal link", "expired", "revoked", "none"];

/// The order the callers take each row in: the ones that change nothing first, the operator last (so that one
/// row's change by A is seen by the operator's call, e.g. a webhook A deleted is a 404 to the operator).
const ORDER: [usize; 8] = [2, 3, 4, 5, 6, 7, 1, 0];

pub(crate) struct Api {
    client: reqwest::Client,
    /// `http://host:port`.
    pub root: String,
    /// The operator's key.
    key: String,
}

impl Api {
    pub(crate) fn new(root: String) -> Api {
        Api::with_key(root, OPERATOR_KEY)
    }

    pub(crate) fn with_key(root: String, key: &str) -> Api {
        Api { client: dispatcher::adapters::tls::client().unwrap(), root, key: key.to_owned() }
    }

    /// `method path` (under `/api/v1` unless it starts with `/metrics`) with `credential`: the status, the
    /// answer's text and its JSON.
    pub(crate) async fn call(
        &self,
        credential: &Credential,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String, Value) {
        let url = match path.starts_with("/metrics") {
            true => format!("{}{path}", self.root),
            false => format!("{}/api/v1{path}", self.root),
        };
        let mut request = self.client.request(method.parse().unwrap(), url);
        request = match credential {
            Credential::Operator => request.header("x-functions-key", &self.key),
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::Nothing => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, text, json)
    }

    pub(crate) async fn expect(
        &self,
        credential: &Credential,
        method: &str,
        path: &str,
        body: Value,
        status: u16,
    ) -> Value {
        let body = (!body.is_null()).then_some(&body);
        let (got, text, json) = self.call(credential, method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {text}");
        json
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Credential {
    Operator,
    Bearer(String),
    Nothing,
}

/// A runtime with its API, kept running while the test needs it.
pub(crate) enum Runtime {
    Local(Dispatcher),
    Azure { _handler: Handler, _cosmos: CosmosServer, _broker: ServiceBusBroker },
}

pub(crate) async fn local(name: &str, env: &[(&str, &str)]) -> (Runtime, Api) {
    let mut env = env.to_vec();
    env.push(("DISPATCHER_API_KEY", OPERATOR_KEY));
    let dispatcher = Dispatcher::start(name, &["--retry-schedule", "1h"], &env);
    let root = dispatcher.api.trim_end_matches("/api/v1").to_owned();
    (Runtime::Local(dispatcher), Api::new(root))
}

async fn azure(name: &str) -> (Runtime, Api) {
    let cosmos = start_cosmos_server();
    cosmos_store(&cosmos, name).await;
    let broker = start_servicebus_broker();
    let connection = service_bus(&broker);
    let mut settings = delivering_to(&connection, "1h");
    settings.push(("DISPATCHER_API_KEY", OPERATOR_KEY));
    let (handler, _, base) = start_serve(&cosmos, name, &settings, std::process::Stdio::null()).await;
    (Runtime::Azure { _handler: handler, _cosmos: cosmos, _broker: broker }, Api::new(base))
}

/// What the matrix runs against: two tenants, their webhooks and credentials.
struct Fixture {
    credentials: [Credential; 8],
    /// Path parameters by name: `wa` (A's webhook), `wdel` (another of A's, deleted by A), `da` (a delivery of
    /// A's), `A` (A's tenant id), `spare` (a token of A's the operator revokes), `S` and `Sdel` (the operator's
    /// sources, the second one deleted).
    ids: HashMap<&'static str, String>,
    /// What only A's answers may show: its URL, its secret, its tenant's name, its description.
    a_only: Vec<String>,
}

const A_URL: &str = "https://tenant-a-receiver.invalid/a-only-path";

fn source(id: &str) -> Value {
    json!({"id": id, "verify": {"type": "github", "secrets": ["source-secret"]}})
}

pub(crate) async fn issue(api: &Api, tenant: &str, body: Value) -> (String, String) {
    let issued = api.expect(&Credential::Operator, "POST", &format!("/tenants/{tenant}/tokens"), body, 201).await;
    (issued["id"].as_str().unwrap().to_owned(), issued["token"].as_str().unwrap().to_owned())
}

async fn fixture(api: &Api) -> Fixture {
    let operator = Credential::Operator;
    let a = json!({"id": "tn-a", "name": "Tenant A only", "grants": {"serviceId": ["sA12345678901"]}});
    api.expect(&operator, "POST", "/tenants", a, 201).await;
    let b = json!({"id": "tn-b", "name": "Tenant B", "grants": {"serviceId": ["sB12345678901"]}});
    api.expect(&operator, "POST", "/tenants", b, 201).await;
    let (_, token_a) = issue(api, "tn-a", json!({"name": "A's CI"})).await;
    let (_, token_b) = issue(api, "tn-b", json!({"name": "B's CI"})).await;
    let (_, read_only) = issue(api, "tn-a", json!({"name": "A's dashboard", "readOnly": true})).await;
    let (_, expired) = issue(api, "tn-a", json!({"name": "short", "expiresIn": "1s"})).await;
    let (revoked_id, revoked) = issue(api, "tn-a", json!({"name": "leaked"})).await;
    let (spare, _) = issue(api, "tn-a", json!({"name": "spare"})).await;
    for id in ["src-a", "src-del"] {
        api.expect(&operator, "POST", "/sources", source(id), 201).await;
    }
    api.expect(&operator, "DELETE", &format!("/tenants/tn-a/tokens/{revoked_id}"), Value::Null, 204).await;
    let link = api.expect(&operator, "POST", "/tenants/tn-a/portal-links", json!({"readOnly": true}), 201).await;
    let portal = link["url"].as_str().unwrap().split_once("#token=").unwrap().1.to_owned();
    assert!(link["url"].as_str().unwrap().contains("/portal/#token=dtk_"), "{link}");

    let (a, b) = (Credential::Bearer(token_a), Credential::Bearer(token_b));
    // A's webhooks reach nothing (the guard refuses loopback for a tenant): its deliveries end at once.
    let registration = |name: &str, url: &str| {
        json!({"url": url, "subscriptions": ["ping", "service:subscribed"],
            "attributes": {"name": name, "serviceId": "sA12345678901"}, "description": "A's private notes"})
    };
    let created = api.expect(&a, "POST", "/webhooks", registration("a", A_URL), 201).await;
    assert_eq!(created["tenant"], "tn-a", "the credential sets the owner");
    let (wa, secret) = (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned());
    let deleted = api.expect(&a, "POST", "/webhooks", registration("a-del", "http://127.0.0.1:9/gone"), 201).await;
    let wdel = deleted["id"].as_str().unwrap().to_owned();
    // A tenant's webhook gets an id nobody chose: a chosen one could be another's, deleted, with its deliveries.
    let chosen =
        json!({"id": "wh-b", "url": "https://b.example/hook", "subscriptions": ["ping"], "attributes": {"name": "b"}});
    api.expect(&b, "POST", "/webhooks", chosen, 422).await;
    let body = json!({"url": "https://b.example/hook", "subscriptions": ["ping"], "attributes": {"name": "b"}});
    api.expect(&b, "POST", "/webhooks", body, 201).await;
    let ping = api.expect(&a, "POST", &format!("/webhooks/{wdel}/ping"), Value::Null, 202).await;
    let delivery = ping["id"].as_str().unwrap().to_owned();
    let path = format!("/deliveries/{delivery}");
    // Logged (and, locally, attempted and given up: nothing runs the attempts of `handler serve` here).
    let logged = || async { api.call(&a, "GET", &path, None).await.0 == 200 };
    eventually_async("A's ping to be logged", Duration::from_secs(20), logged).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // the short token expires
    let ids = HashMap::from([
        ("wa", wa),
        ("wdel", wdel),
        ("da", delivery),
        ("A", "tn-a".to_owned()),
        ("spare", spare),
        ("S", "src-a".to_owned()),
        ("Sdel", "src-del".to_owned()),
    ]);
    Fixture {
        credentials: [
            operator,
            a,
            b,
            Credential::Bearer(read_only),
            Credential::Bearer(portal),
            Credential::Bearer(expired),
            Credential::Bearer(revoked),
            Credential::Nothing,
        ],
        ids,
        a_only: vec![A_URL.to_owned(), secret, "Tenant A only".to_owned(), "A's private notes".to_owned()],
    }
}

/// One operation of the document: its method and path as the document writes them, which object its `{id}`
/// names, its body, and the status each caller gets (`|` between statuses either may answer).
struct Row {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    body: Value,
    expected: [&'static str; 8],
}

const ANYONE: [&str; 8] = ["200", "200", "200", "200", "200", "401", "401", "401"];
const OPERATOR_ONLY: [&str; 8] = ["200", "403", "403", "403", "403", "401", "401", "401"];
/// Reading A's object: B does not learn it exists.
const A_READS: [&str; 8] = ["200", "200", "404", "200", "200", "401", "401", "401"];

fn rows() -> Vec<Row> {
    let row = |method, path, id, body: Value, expected| Row { method, path, id, body, expected };
    let changes = |ok: &'static str| [ok, ok, "404", "403", "403", "401", "401", "401"];
    let with = |expected: [&'static str; 8], first: &'static str| {
        let mut expected = expected;
        expected[0] = first;
        expected
    };
    let a_config = json!({"url": A_URL, "subscriptions": ["ping", "service:subscribed"], "tenant": "tn-a",
        "attributes": {"name": "a", "serviceId": "sA12345678901"}, "description": "A's private notes"});
    let a_tenant = json!({"name": "Tenant A only", "grants": {"serviceId": ["sA12345678901"]}});
    let ping_a = json!({"name": "ping", "payload": {"name": "a"}});
    vec![
        row("GET", "/api/v1/info", "", Value::Null, ANYONE),
        row("GET", "/api/v1/openapi.json", "", Value::Null, ANYONE),
        row("GET", "/api/v1/events/catalog", "", Value::Null, ANYONE),
        row("POST", "/api/v1/events", "", json!({"name": "ping:all"}), with(OPERATOR_ONLY, "202")),
        row("POST", "/api/v1/events/preview", "", ping_a.clone(), ANYONE),
        row("POST", "/api/v1/transforms/preview", "", json!({"transform": "body", "event": ping_a}), ANYONE),
        row("GET", "/api/v1/events/rejected", "", Value::Null, OPERATOR_ONLY),
        row("GET", "/api/v1/webhooks", "", Value::Null, ANYONE),
        row(
            "POST",
            "/api/v1/webhooks",
            "",
            json!({"url": "https://new.example/hook", "subscriptions": ["ping"], "attributes": {"name": "new"}}),
            ["201", "201", "201", "403", "403", "401", "401", "401"],
        ),
        row("GET", "/api/v1/webhooks/{id}", "wa", Value::Null, A_READS),
        row("PUT", "/api/v1/webhooks/{id}", "wa", a_config, changes("200")),
        row("PATCH", "/api/v1/webhooks/{id}", "wa", json!({"description": "A's private notes"}), changes("200")),
        row("GET", "/api/v1/webhooks/{id}/secret", "wa", Value::Null, A_READS),
        row("POST", "/api/v1/webhooks/{id}/rotate-secret", "wa", Value::Null, changes("200")),
        row("POST", "/api/v1/webhooks/{id}/ping", "wa", Value::Null, changes("202")),
        row("POST", "/api/v1/webhooks/{id}/recover", "wa", json!({"since": "2000-01-01T00:00:00Z"}), changes("202")),
        row("GET", "/api/v1/webhooks/{id}/health", "wa", Value::Null, A_READS),
        row("GET", "/api/v1/webhooks/{id}/deliveries", "wa", Value::Null, A_READS),
        row("GET", "/api/v1/deliveries/{id}", "da", Value::Null, A_READS),
        row("POST", "/api/v1/deliveries/{id}/retry", "da", Value::Null, changes("202|409")),
        // A deletes it; the operator, last, finds it gone.
        row(
            "DELETE",
            "/api/v1/webhooks/{id}",
            "wdel",
            Value::Null,
            ["404", "204", "404", "403", "403", "401", "401", "401"],
        ),
        row("GET", "/api/v1/tenants", "", Value::Null, OPERATOR_ONLY),
        row("POST", "/api/v1/tenants", "", json!({"name": "C"}), with(OPERATOR_ONLY, "201")),
        row("GET", "/api/v1/tenants/{id}", "A", Value::Null, OPERATOR_ONLY),
        row("PUT", "/api/v1/tenants/{id}", "A", a_tenant, OPERATOR_ONLY),
        row("PATCH", "/api/v1/tenants/{id}", "A", json!({"maxWebhooks": 20}), OPERATOR_ONLY),
        // A still owns webhooks.
        row("DELETE", "/api/v1/tenants/{id}", "A", Value::Null, with(OPERATOR_ONLY, "409")),
        row("GET", "/api/v1/tenants/{id}/tokens", "A", Value::Null, OPERATOR_ONLY),
        row("POST", "/api/v1/tenants/{id}/tokens", "A", json!({"name": "more"}), with(OPERATOR_ONLY, "201")),
        row("DELETE", "/api/v1/tenants/{id}/tokens/{tokenId}", "A", Value::Null, with(OPERATOR_ONLY, "204")),
        row("POST", "/api/v1/tenants/{id}/portal-links", "A", json!({}), with(OPERATOR_ONLY, "201")),
        row("GET", "/api/v1/sources", "", Value::Null, OPERATOR_ONLY),
        row("POST", "/api/v1/sources", "", source("src-new"), with(OPERATOR_ONLY, "201")),
        row("GET", "/api/v1/sources/{id}", "S", Value::Null, OPERATOR_ONLY),
        row("PUT", "/api/v1/sources/{id}", "S", json!({"verify": {"type": "github"}}), OPERATOR_ONLY),
        row("DELETE", "/api/v1/sources/{id}", "Sdel", Value::Null, with(OPERATOR_ONLY, "204")),
        // No credential lets a provider's request in, nor keeps it out: its signature does (none here).
        row("POST", "/api/v1/in/{sourceId}", "S", json!({"action": "opened"}), ["401"; 8]),
        row("GET", "/metrics", "", Value::Null, OPERATOR_ONLY),
    ]
}

async fn isolation_matrix(api: &Api) {
    let fixture = fixture(api).await;
    let rows = rows();
    // Every operation of the document is in the matrix.
    let document = api.expect(&Credential::Operator, "GET", "/openapi.json", Value::Null, 200).await;
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let covered: BTreeSet<(String, String)> =
        rows.iter().filter(|r| r.path != "/metrics").map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(covered, documented, "the matrix covers the document");

    let mut to_b = Vec::new();
    for row in &rows {
        let mut path = row.path.trim_start_matches("/api/v1").to_owned();
        if !row.id.is_empty() {
            path = path.replace("{id}", &fixture.ids[row.id]).replace("{sourceId}", &fixture.ids[row.id]);
        }
        path = path.replace("{tokenId}", &fixture.ids["spare"]);
        let body = (!row.body.is_null()).then_some(&row.body);
        for column in ORDER {
            let (status, text, _) = api.call(&fixture.credentials[column], row.method, &path, body).await;
            let expected = row.expected[column];
            assert!(
                expected.split('|').any(|s| s == status.to_string()),
                "{} {} as {}: {status}, expected {expected}: {text}",
                row.method,
                row.path,
                CALLERS[column]
            );
            if status == 401 || status == 403 {
                assert!(!text.contains("dtk_"), "a refusal never echoes the credential: {text}");
            }
            if column == 2 {
                to_b.push((format!("{} {}", row.method, row.path), text));
            }
        }
    }
    for (operation, text) in &to_b {
        for secret in &fixture.a_only {
            assert!(!text.contains(secret.as_str()), "{operation} showed B what is A's ({secret}): {text}");
        }
        // The lists and the preview name no webhook of A's.
        if ["GET /api/v1/webhooks", "POST /api/v1/events/preview"].contains(&operation.as_str()) {
            for id in [&fixture.ids["wa"], &fixture.ids["wdel"]] {
                assert!(!text.contains(id.as_str()), "{operation} showed B A's webhook: {text}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_every_operation_answers_each_credential_as_the_contract_says() {
    let (_runtime, api) = local("tenants-matrix", &[]).await;
    isolation_matrix(&api).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_every_operation_answers_each_credential_as_the_contract_says() {
    let (_runtime, api) = azure("tenants-matrix").await;
    isolation_matrix(&api).await;
}

/// On Azure, instances share nothing but Cosmos DB: a token revoked through one stops working on another once
/// its cache is as old as DISPATCHER_WEBHOOK_CACHE_SECONDS (1 s here), and until then a token costs no Cosmos
/// read per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_a_revoked_token_stops_working_on_every_instance_and_costs_one_read_a_cache_age() {
    let log = crate::support::temp_dir("tenants-revocation").join("requests.log");
    let cosmos = crate::support::cosmos::start_cosmos_server_with(&[("COSMOS_REQUEST_LOG", log.to_str().unwrap())]);
    cosmos_store(&cosmos, "revocation").await;
    let settings = [("DISPATCHER_API_KEY", OPERATOR_KEY), ("DISPATCHER_WEBHOOK_CACHE_SECONDS", "1")];
    let (_one, _, first) = start_serve(&cosmos, "revocation", &settings, std::process::Stdio::null()).await;
    let (_two, _, second) = start_serve(&cosmos, "revocation", &settings, std::process::Stdio::null()).await;
    let (first, second) = (Api::new(first), Api::new(second));
    first.expect(&Credential::Operator, "POST", "/tenants", json!({"id": "tn", "name": "T"}), 201).await;
    let (id, token) = issue(&first, "tn", json!({"name": "t"})).await;
    let tenant = Credential::Bearer(token);
    let token_reads =
        || std::fs::read_to_string(&log).unwrap().lines().filter(|l| l.contains("/colls/tokens/docs/")).count();
    second.expect(&tenant, "GET", "/webhooks", Value::Null, 200).await;
    let before = token_reads();
    for _ in 0..20 {
        second.expect(&tenant, "GET", "/webhooks", Value::Null, 200).await;
    }
    assert!(token_reads() - before <= 1, "20 calls inside a cache age read the token at most once more");

    first.expect(&Credential::Operator, "DELETE", &format!("/tenants/tn/tokens/{id}"), Value::Null, 204).await;
    first.expect(&tenant, "GET", "/webhooks", Value::Null, 401).await;
    let revoked = || async { second.call(&tenant, "GET", "/webhooks", None).await.0 == 401 };
    eventually_async("the other instance to refuse the revoked token", Duration::from_secs(3), revoked).await;
}

/// Two tenants with different `serviceId` grants: `profile:completed` reaches each tenant's webhook with its
/// own service only; another's service is refused at registration; narrowing a grant stops routing at once
/// (health says why) and drops what was queued for the withdrawn value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_routing_and_narrowing_one_stops_it_at_once() {
    let receivers = Receivers::start().await;
    // The receivers are on loopback: let the guard through to them, for tenants too.
    let (runtime, api) = local("tenants-grants", &[("DISPATCHER_ALLOWED_NETWORKS", "127.0.0.1/32")]).await;
    let operator = Credential::Operator;
    for (id, service) in [("tn-1", "sOne123456789"), ("tn-2", "sTwo123456789")] {
        api.expect(
            &operator,
            "POST",
            "/tenants",
            json!({"id": id, "name": id, "grants": {"serviceId": [service]}}),
            201,
        )
        .await;
    }
    let (_, one) = issue(&api, "tn-1", json!({"name": "one"})).await;
    let (_, two) = issue(&api, "tn-2", json!({"name": "two"})).await;
    let (one, two) = (Credential::Bearer(one), Credential::Bearer(two));
    let register = |path: &str, service: &str| json!({"url": receivers.url(path), "subscriptions": ["service:subscribed"], "attributes": {"serviceId": service}});
    let first = api.expect(&one, "POST", "/webhooks", register("wh-1", "sOne123456789"), 201).await;
    let wh1 = first["id"].as_str().unwrap().to_owned();
    api.expect(&two, "POST", "/webhooks", register("wh-2", "sTwo123456789"), 201).await;
    let refused = api.expect(&one, "POST", "/webhooks", register("wh-1b", "sTwo123456789"), 422).await;
    assert_eq!(refused["problems"][0]["path"], "attributes.serviceId", "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("sTwo123456789"), "names the value: {refused}");
    let outside = api
        .expect(
            &one,
            "POST",
            "/webhooks",
            json!({"url": receivers.url("x"), "subscriptions": ["ping"],
        "attributes": {"fiscalCode": "AAABBB00A00A000B"}}),
            422,
        )
        .await;
    assert_eq!(outside["problems"][0]["path"], "attributes.fiscalCode", "an attribute not granted at all: {outside}");

    let completed = json!({"name": "profile:completed", "payload": {"fiscalCode": "AAABBB00A00A000B", "servicePreferencesMode": "AUTO"}});
    api.expect(&operator, "POST", "/events", completed.clone(), 202).await;
    let both = || receivers.at("wh-1").len() == 1 && receivers.at("wh-2").len() == 1;
    eventually("each tenant's service:subscribed", Duration::from_secs(10), both).await;
    for (path, service) in [("wh-1", "sOne123456789"), ("wh-2", "sTwo123456789")] {
        let body = receivers.at(path)[0].json();
        assert_eq!(body["name"], "service:subscribed");
        assert!(
            body.to_string().contains("AAABBB00A00A000B")
                && !body.to_string().contains(if service.starts_with("sOne") { "sTwo" } else { "sOne" }),
            "{body}"
        );
    }

    // Narrowed: tenant 1's webhook gets nothing more, and its health says why.
    api.expect(&operator, "PATCH", "/tenants/tn-1", json!({"grants": {"serviceId": []}}), 200).await;
    api.expect(&operator, "POST", "/events", completed, 202).await;
    eventually("tenant 2's second delivery", Duration::from_secs(10), || receivers.at("wh-2").len() == 2).await;
    let health = api.expect(&one, "GET", &format!("/webhooks/{wh1}/health"), Value::Null, 200).await;
    assert!(health["blocked"].as_str().unwrap().contains("outside the grants"), "{health}");
    // A ping queued for it now is dropped at its attempt, not sent.
    let ping = api.expect(&one, "POST", &format!("/webhooks/{wh1}/ping"), Value::Null, 202).await;
    let path = format!("/deliveries/{}", ping["id"].as_str().unwrap());
    let dead = || async { api.call(&one, "GET", &path, None).await.2["status"] == "dead" };
    eventually_async("the ping to end", Duration::from_secs(10), dead).await;
    let dead = api.call(&one, "GET", &path, None).await.2;
    assert!(dead["deadReason"].as_str().unwrap_or_default().contains("outside the grants"), "{dead}");
    assert_eq!(receivers.at("wh-1").len(), 1, "nothing more reached it");

    // The audit log names who changed what, and never a credential.
    let Runtime::Local(dispatcher) = &runtime else { unreachable!() };
    let logs = dispatcher.logs();
    assert!(logs.contains("tenant tn-1 (token tok_") && logs.contains("webhook.create"), "{logs}");
    assert!(logs.contains("tenant.patch"), "{logs}");
    assert!(!logs.contains("dtk_"), "no token in the logs");
    let metrics = api.call(&operator, "GET", "/metrics", None).await.1;
    assert!(metrics.contains("dispatcher_changes_total{action=\"tenant.patch\",by=\"operator\""), "{metrics}");
}

/// A tenant's target on loopback is refused at connect time though the operator's own webhooks may reach it
/// (local mode allows private targets by default); `maxWebhooks` caps a tenant; a disabled tenant's
/// credentials are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_targets_are_guarded_and_its_webhooks_capped() {
    let receivers = Receivers::start().await;
    let (_runtime, api) = local("tenants-guard", &[]).await;
    let operator = Credential::Operator;
    api.expect(&operator, "POST", "/tenants", json!({"id": "tn", "name": "T", "maxWebhooks": 2}), 201).await;
    let (_, token) = issue(&api, "tn", json!({"name": "t"})).await;
    let tenant = Credential::Bearer(token);
    let mut ids = Vec::new();
    for (credential, path) in [(&operator, "op"), (&tenant, "mine")] {
        let body = json!({"url": receivers.url(path), "subscriptions": ["ping"], "attributes": {"name": path}});
        let created = api.expect(credential, "POST", "/webhooks", body, 201).await;
        let id = created["id"].as_str().unwrap().to_owned();
        api.expect(credential, "POST", &format!("/webhooks/{id}/ping"), Value::Null, 202).await;
        ids.push(id);
    }
    let (op, mine) = (ids[0].clone(), ids[1].clone());
    eventually("the operator's ping", Duration::from_secs(10), || receivers.at("op").len() == 1).await;
    let error = eventually_attempt_error(&api, &tenant, &mine).await;
    assert!(error.starts_with("refused: 127.0.0.1"), "{error}");
    assert!(receivers.at("mine").is_empty());
    for metadata in ["http://169.254.169.254/latest/meta-data", "http://[fd00::1]/hook", "http://10.1.2.3/hook"] {
        api.expect(&tenant, "PATCH", &format!("/webhooks/{mine}"), json!({"url": metadata}), 200).await;
        api.expect(&tenant, "POST", &format!("/webhooks/{mine}/ping"), Value::Null, 202).await;
        let error = eventually_attempt_error(&api, &tenant, &mine).await;
        assert!(error.starts_with("refused:"), "{metadata}: {error}");
    }

    let body = json!({"url": "https://t.example/hook", "subscriptions": ["ping"]});
    api.expect(&tenant, "POST", "/webhooks", body.clone(), 201).await;
    let full = api.expect(&tenant, "POST", "/webhooks", body, 409).await;
    assert!(full["detail"].as_str().unwrap().contains("maxWebhooks: 2"), "{full}");
    // A tenant may not name another owner, nor take the operator's webhook.
    api.expect(
        &tenant,
        "POST",
        "/webhooks",
        json!({"url": "https://t.example/x", "subscriptions": ["ping"], "tenant": "other"}),
        422,
    )
    .await;
    api.expect(&tenant, "PATCH", &format!("/webhooks/{op}"), json!({"tenant": "tn"}), 404).await;

    api.expect(&operator, "PATCH", "/tenants/tn", json!({"disabled": true}), 200).await;
    let refused = api.expect(&tenant, "GET", "/webhooks", Value::Null, 403).await;
    assert!(refused["detail"].as_str().unwrap().contains("disabled"), "{refused}");
    // Deleting a tenant with webhooks takes ?cascade=true, which deletes them.
    api.expect(&operator, "DELETE", "/tenants/tn", Value::Null, 409).await;
    api.expect(&operator, "DELETE", "/tenants/tn?cascade=true", Value::Null, 204).await;
    api.expect(&operator, "GET", &format!("/webhooks/{mine}"), Value::Null, 404).await;
    api.expect(&tenant, "GET", "/webhooks", Value::Null, 401).await;
}

/// The error of the newest attempt of `webhook`'s newest delivery, once there is one.
async fn eventually_attempt_error(api: &Api, credential: &Credential, webhook: &str) -> String {
    let path = format!("/webhooks/{webhook}/deliveries");
    let started = std::time::Instant::now();
    loop {
        let page = api.call(credential, "GET", &path, None).await.2;
        let last = page["items"][0]["attempts"].as_array().and_then(|a| a.last().cloned());
        if let Some(error) = last.as_ref().and_then(|a| a["error"].as_str()) {
            return error.to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no failed attempt of {webhook}: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Without an operator key every caller is the operator: no tenant credential is issued there, as it would
/// promise an isolation the dispatcher does not enforce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_operator_key_no_tenant_credential_is_issued() {
    let dispatcher = Dispatcher::start("tenants-open", &[], &[]);
    let api = Api::new(dispatcher.api.trim_end_matches("/api/v1").to_owned());
    api.expect(&Credential::Nothing, "POST", "/tenants", json!({"id": "tn", "name": "T"}), 201).await;
    for path in ["/tenants/tn/tokens", "/tenants/tn/portal-links"] {
        let body = if path.ends_with("tokens") { json!({"name": "t"}) } else { json!({}) };
        let refused = api.expect(&Credential::Nothing, "POST", path, body, 409).await;
        assert!(refused["detail"].as_str().unwrap().contains("DISPATCHER_API_KEY"), "{refused}");
    }
}
