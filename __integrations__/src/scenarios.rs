//! `testagent run`: the scenarios, played as producer (events through the API) and consumer (the hooks of
//! `consumer.rs`), each ending when what it waits for happens or its deadline passes, never after a fixed sleep.
//! The original integration set comes first (wh1, wh2, wh3 of ../shared/reference/original-io-dispatcher.md),
//! then ours.

use crate::consumer::{Behaviour, Consumer, Received};
use crate::functions_host::FunctionsTarget;
use crate::handler_process::{Handler, TempDir};
use crate::producer::Producer;
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FC: &str = "AAABBB00A00A000B";
const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Where the dispatcher runs: `local` (a `handler local` this agent starts, unless `--url` is given), or
    /// `functions` (a `handler serve` on Cosmos DB, driven as the Functions host and Service Bus would).
    #[arg(long, default_value = "local")]
    pub target: String,
    /// With `--target functions`: a Cosmos DB endpoint to use instead of starting the local server.
    #[arg(long)]
    pub cosmos_endpoint: Option<String>,
    /// The API base URL of a dispatcher already running (e.g. http://127.0.0.1:7071/api/v1).
    #[arg(long)]
    pub url: Option<String>,
    /// The `handler` binary to start (default: the one next to this program).
    #[arg(long)]
    pub handler: Option<PathBuf>,
    /// Publish the scenarios' events straight to this Service Bus namespace's or emulator's events queue, as the
    /// internal services do, instead of through the API (for a Functions host already running, with `--url`).
    #[arg(long, env = "SERVICEBUS_CONNECTION", hide_env_values = true)]
    pub service_bus: Option<String>,
    /// The events queue, with `--service-bus`.
    #[arg(long, default_value = "events")]
    pub events_queue: String,
    /// Serve the webhook receivers on every interface and give the dispatcher URLs with this host name (when the
    /// dispatcher runs elsewhere, as in docker compose).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Sent as `x-functions-key` on every API call: the key of a Functions host that enforces `authLevel`.
    #[arg(long, env = "FUNCTIONS_KEY", hide_env_values = true)]
    pub functions_key: Option<String>,
    /// With `--url`: how long to wait for the dispatcher's API to answer before the first scenario.
    #[arg(long, default_value = "3m", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// Run only the scenarios whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
}

type Outcome = Result<(), String>;
type Scenario = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// Every scenario, in the order they run.
const SCENARIOS: &[(&str, Scenario)] = &[
    ("original: ping to one webhook", |c| Box::pin(ping_to_one(c))),
    ("original: bursts of 5, 10 and 100 pings", |c| Box::pin(bursts(c))),
    ("original: ping to both named webhooks", |c| Box::pin(ping_to_both(c))),
    ("original: ping:all to every named webhook", |c| Box::pin(ping_all(c))),
    ("original: service:subscribed for a mapped service", |c| Box::pin(subscribed_mapped(c))),
    ("original: service:subscribed for an unmapped service", |c| Box::pin(subscribed_unmapped(c))),
    ("original: profile:completed AUTO and MANUAL", |c| Box::pin(profile(c, "profile:completed"))),
    ("original: profile:service-preferences-changed AUTO and MANUAL", |c| {
        Box::pin(profile(c, "profile:service-preferences-changed"))
    }),
    ("retries keep the webhook-id", |c| Box::pin(retries(c))),
    ("dead-letter with a failure callback", |c| Box::pin(dead_letter(c))),
    ("disabled and deleted webhooks receive nothing", |c| Box::pin(disabled_and_deleted(c))),
    ("rotated secret: both signatures verify during the overlap", |c| Box::pin(rotation(c))),
    ("replay from the attempt log keeps the webhook-id", |c| Box::pin(replay(c))),
    ("invalid events are rejected with every problem", |c| Box::pin(invalid(c))),
    ("the correlation id is passed on", |c| Box::pin(correlation(c))),
];

pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let dir = TempDir::new("testagent-run");
    // Short back-off, so that the retry scenarios take milliseconds; the schedule itself is tested elsewhere.
    let schedule = "100ms,100ms,100ms";
    let (mut _handler, mut functions) = (None, None);
    let api = match (args.target.as_str(), &args.url) {
        ("local", Some(url)) => url.trim_end_matches('/').to_owned(),
        ("local", None) => {
            let (handler, _) = Handler::start(args.handler.as_deref(), &dir.0, &["--retry-schedule", schedule])?;
            let api = handler.api.clone();
            _handler = Some(handler);
            api
        }
        ("functions", Some(url)) => url.trim_end_matches('/').to_owned(),
        ("functions", None) => {
            let env = [("DISPATCHER_RETRY_SCHEDULE", schedule)];
            let target = FunctionsTarget::start(args.handler.as_deref(), args.cosmos_endpoint.as_deref(), &env).await?;
            let api = target.api.clone();
            functions = Some(target);
            api
        }
        (other, _) => bail!("--target {other:?}: the targets are `local` and `functions`"),
    };
    let client = api_client(args.functions_key.as_deref())?;
    if args.url.is_some() {
        wait_until_ready(&client, &api, args.wait).await?;
    }
    let producer = Producer::new(args.service_bus.as_deref(), &args.events_queue, &api, client.clone())
        .map_err(anyhow::Error::msg)?;
    let ctx = Ctx {
        api,
        client,
        producer,
        consumer: Consumer::start(args.advertise.as_deref()).await?,
        secrets: Mutex::default(),
        functions,
    };
    ctx.register_original().await.map_err(anyhow::Error::msg)?;
    let (mut passed, mut failed) = (0, 0);
    for (name, scenario) in SCENARIOS.iter().filter(|(name, _)| args.only.as_ref().is_none_or(|o| name.contains(o))) {
        let started = Instant::now();
        let outcome = scenario(&ctx).await;
        let took = started.elapsed().as_millis();
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("ok    {name} ({took} ms)");
            }
            Err(reason) => {
                failed += 1;
                println!("FAIL  {name} ({took} ms): {reason}");
            }
        }
    }
    if let Some(functions) = &ctx.functions {
        for violation in functions.violations() {
            failed += 1;
            println!("FAIL  Service Bus contract: {violation}");
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

fn api_client(functions_key: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = functions_key {
        let mut value = reqwest::header::HeaderValue::from_str(key).context("--functions-key is not a header value")?;
        value.set_sensitive(true);
        headers.insert("x-functions-key", value);
    }
    dispatcher::http_client::build(dispatcher::http_client::builder().default_headers(headers))
        .map_err(anyhow::Error::msg)
}

/// Waits for `GET {api}/info` to answer 200: a Functions host starting in a container takes a while.
async fn wait_until_ready(client: &reqwest::Client, api: &str, wait: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < wait {
        match client.get(format!("{api}/info")).send().await {
            Ok(response) if response.status() == 200 => return Ok(()),
            Ok(response) => last = format!("status {}", response.status()),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("{api}/info did not answer 200 within {wait:?} ({last})")
}

struct Ctx {
    api: String,
    client: reqwest::Client,
    producer: Producer,
    consumer: Consumer,
    /// Hook → its webhook's signing secret.
    secrets: Mutex<HashMap<String, String>>,
    /// The Functions host and Service Bus stand-ins, with `--target functions`.
    functions: Option<FunctionsTarget>,
}

macro_rules! check {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return Err(format!($($reason)+));
        }
    };
}

impl Ctx {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let mut request = self.client.request(method, format!("{}{path}", self.api));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("{path}: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Registers a webhook for `hook`; returns its id and remembers its secret.
    async fn register(&self, hook: &str, mut body: Value) -> Result<String, String> {
        body["url"] = json!(self.consumer.url(hook));
        let (status, created) = self.call(reqwest::Method::POST, "/webhooks", Some(body)).await?;
        check!(status == 201, "registering {hook}: {status} {created}");
        self.set_secret(hook, created["secret"].as_str().unwrap_or_default());
        Ok(created["id"].as_str().unwrap_or_default().to_owned())
    }

    fn set_secret(&self, hook: &str, secret: &str) {
        if let Ok(mut secrets) = self.secrets.lock() {
            secrets.insert(hook.to_owned(), secret.to_owned());
        }
    }

    fn secret(&self, hook: &str) -> String {
        self.secrets.lock().ok().and_then(|s| s.get(hook).cloned()).unwrap_or_default()
    }

    async fn register_original(&self) -> Result<(), String> {
        self.register("wh1", json!({"subscriptions": ["ping"], "attributes": {"name": "wh1"}})).await?;
        let wh2 = json!({"subscriptions": "ping,service:subscribed", "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}, "headers": {"x-api-key": "wh2-key"}});
        self.register("wh2", wh2).await?;
        let wh3 = json!({"subscriptions": ["service:subscribed"], "attributes": {"serviceId": "aServiceId09876"}});
        self.register("wh3", wh3).await?;
        Ok(())
    }

    /// Publishes an event, and checks that the dispatcher made `expected` deliveries of it where it can tell:
    /// the API's answer in local mode, the Functions host stand-in's outputs on Azure. A Functions host running
    /// elsewhere does not tell; the scenarios' receipts are checked all the same.
    async fn publish(&self, event: Value, expected: u64) -> Outcome {
        self.publish_with(event, expected, None).await
    }

    async fn publish_with(&self, event: Value, expected: u64, correlation_id: Option<&str>) -> Outcome {
        let published = self.producer.publish(&event, correlation_id).await?;
        let deliveries = match (published.answer["deliveries"].as_u64(), &self.functions) {
            (Some(deliveries), _) => Some(deliveries),
            // On Azure the event is routed later, by OnIncomingEvent: ask the host how many jobs it made.
            (None, Some(functions)) => Some(functions.deliveries_of(&published.id, DEADLINE).await?),
            (None, None) => None,
        };
        if let Some(deliveries) = deliveries {
            check!(deliveries == expected, "{event}: {deliveries} deliveries, expected {expected}");
        }
        Ok(())
    }

    /// Waits until `hook` has received `count` requests in all; they must all be signed with its secret.
    async fn received(&self, hook: &str, count: usize) -> Result<Vec<Received>, String> {
        let started = Instant::now();
        loop {
            let received = self.consumer.at(hook);
            if received.len() >= count {
                let secret = self.secret(hook);
                check!(received.iter().all(|r| r.verify(&secret)), "{hook}: a signature does not verify");
                return Ok(received);
            }
            check!(started.elapsed() < DEADLINE, "{hook}: {} of {count} requests after {DEADLINE:?}", received.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `condition` holds of the delivery `id` in the attempt log.
    async fn delivery_until(&self, id: &str, what: &str, condition: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let (_, delivery) = self.call(reqwest::Method::GET, &format!("/deliveries/{id}"), None).await?;
            if condition(&delivery) {
                return Ok(delivery);
            }
            check!(started.elapsed() < DEADLINE, "delivery {id}: not {what} after {DEADLINE:?}: {delivery}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ping_body() -> Value {
    json!({"name": "ping", "payload": {}})
}

fn subscribed_body() -> Value {
    json!({"name": "service:subscribed", "payload": {"fiscalCode": FC}})
}

/// The body of the last request `hook` received.
fn last(received: &[Received]) -> Value {
    received.last().map(Received::json).unwrap_or(Value::Null)
}

async fn ping_to_one(c: &Ctx) -> Outcome {
    let before = c.consumer.at("wh1").len();
    c.publish(json!({"name": "ping", "payload": {"name": "wh1"}}), 1).await?;
    let received = c.received("wh1", before + 1).await?;
    check!(last(&received) == ping_body(), "wh1 got {}", last(&received));
    Ok(())
}

async fn bursts(c: &Ctx) -> Outcome {
    for burst in [5, 10, 100] {
        let before = c.consumer.at("wh1").len();
        for _ in 0..burst {
            c.publish(json!({"name": "ping", "payload": {"name": "wh1"}}), 1).await?;
        }
        let received = c.received("wh1", before + burst).await?;
        let ids: std::collections::HashSet<_> =
            received[before..].iter().filter_map(|r| r.header("webhook-id")).collect();
        check!(ids.len() == burst, "burst of {burst}: {} distinct webhook-ids", ids.len());
    }
    Ok(())
}

async fn ping_to_both(c: &Ctx) -> Outcome {
    let (one, two) = (c.consumer.at("wh1").len(), c.consumer.at("wh2").len());
    for name in ["wh1", "wh2"] {
        c.publish(json!({"name": "ping", "payload": {"name": name}}), 1).await?;
    }
    c.received("wh1", one + 1).await?;
    let wh2 = c.received("wh2", two + 1).await?;
    check!(wh2.last().and_then(|r| r.header("x-api-key")) == Some("wh2-key"), "wh2's configured header");
    Ok(())
}

async fn ping_all(c: &Ctx) -> Outcome {
    let (one, two) = (c.consumer.at("wh1").len(), c.consumer.at("wh2").len());
    c.publish(json!({"name": "ping:all"}), 2).await?;
    check!(last(&c.received("wh1", one + 1).await?) == ping_body(), "wh1 got a ping");
    check!(last(&c.received("wh2", two + 1).await?) == ping_body(), "wh2 got a ping");
    Ok(())
}

async fn subscribed_mapped(c: &Ctx) -> Outcome {
    let two = c.consumer.at("wh2").len();
    let event = json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "aServiceId12345"}});
    c.publish(event, 1).await?;
    let received = c.received("wh2", two + 1).await?;
    check!(last(&received) == subscribed_body(), "wh2 got {} (serviceId is its attribute: left out)", last(&received));
    Ok(())
}

async fn subscribed_unmapped(c: &Ctx) -> Outcome {
    let event = json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "unmapped"}});
    c.publish(event, 0).await?;
    Ok(())
}

async fn profile(c: &Ctx, name: &str) -> Outcome {
    let (two, three) = (c.consumer.at("wh2").len(), c.consumer.at("wh3").len());
    let event = |mode: &str| json!({"name": name, "payload": {"fiscalCode": FC, "servicePreferencesMode": mode, "oldServicePreferencesMode": "LEGACY"}});
    c.publish(event("MANUAL"), 0).await?;
    c.publish(event("AUTO"), 2).await?;
    check!(last(&c.received("wh2", two + 1).await?) == subscribed_body(), "wh2 got service:subscribed");
    check!(last(&c.received("wh3", three + 1).await?) == subscribed_body(), "wh3 got service:subscribed");
    Ok(())
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
