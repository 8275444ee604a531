//! `testagent run`: the scenarios, played as producer (events through the API, or to the events queue) and
//! consumer (the hooks of `consumer.rs`), each ending when what it waits for happens or its deadline passes,
//! never after a fixed sleep. The original integration set comes first (`original.rs`, from
//! `scenarios/original.json`, which the core's tests play too), then ours (`ours.rs`).

use crate::consumer::{Consumer, Received};
use crate::functions_host::{FunctionsTarget, OPERATOR_KEY};
use crate::producer::Producer;
use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testkit::handler::Handler;
use testkit::TempDir;

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
    /// With `--target functions`: the connection string of a Service Bus emulator to use instead of starting the
    /// local broker (`UseDevelopmentEmulator=true`).
    #[arg(long, hide_env_values = true)]
    pub service_bus_emulator: Option<String>,
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
    /// The catalog file the dispatcher this agent starts runs on (`DISPATCHER_CATALOG`; the built-in one
    /// without). The scenarios whose events it declares are played; the APIs its enrichers ask are the agent's
    /// stand-ins (`CTP_CUSTOMER_API`, `CTP_CUSTOMER_API_TOKEN`, `ORDERS_GRAPHQL_API`).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

type Outcome = Result<(), String>;
type Played<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// A scenario: its name, and how it is played.
struct Scenario {
    name: String,
    play: Box<dyn for<'a> Fn(&'a Ctx) -> Played<'a>>,
}

impl Scenario {
    fn new(name: impl Into<String>, play: impl for<'a> Fn(&'a Ctx) -> Played<'a> + 'static) -> Scenario {
        Scenario { name: name.into(), play: Box::new(play) }
    }
}

/// The events the IO scenarios publish and subscribe to: a catalog declaring them plays them.
const IO_EVENTS: [&str; 4] = ["ping", "ping:all", "profile:completed", "service:subscribed"];

/// Every scenario the catalog of `events` can play, in the order they run: the IO sets on the IO catalog (the
/// built-in one, or a copy), the downstream set on `catalogs/downstream.json`.
fn scenarios(events: &[String]) -> Vec<Scenario> {
    let declares = |needed: &[&str]| needed.iter().all(|name| events.iter().any(|e| e == name));
    let mut all = Vec::new();
    if declares(&IO_EVENTS) {
        all.extend(original::scenarios());
        all.extend(ours::scenarios());
        all.extend(policy::scenarios());
        all.extend(callbacks::scenarios());
        all.extend(tenants::scenarios());
        all.extend(two_way::scenarios());
    }
    if declares(&downstream::EVENTS) {
        all.extend(downstream::scenarios());
    }
    all
}

pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let dir = TempDir::new("testagent-run");
    // Short back-off, so that the retry scenarios take milliseconds; the schedule itself is tested elsewhere.
    // A short auto-disable window, which only a webhook failing three times over 400 ms reaches.
    let (schedule, disable_after) = ("100ms,100ms,100ms", "400ms");
    // First: the stand-ins of the APIs the catalog's enrichers ask are the consumer's.
    let consumer = Consumer::start(args.advertise.as_deref()).await?;
    let mut catalog_env: Vec<(&str, String)> = Vec::new();
    if let Some(catalog) = &args.catalog {
        let path = std::fs::canonicalize(catalog).with_context(|| format!("--catalog {}", catalog.display()))?;
        catalog_env.push(("DISPATCHER_CATALOG", path.to_string_lossy().into_owned()));
        catalog_env.push(("CTP_CUSTOMER_API", format!("{}/apis", consumer.base)));
        catalog_env.push(("CTP_CUSTOMER_API_TOKEN", crate::apis::CUSTOMER_API_TOKEN.to_owned()));
        catalog_env.push(("ORDERS_GRAPHQL_API", format!("{}/apis/graphql", consumer.base)));
    }
    let catalog_env: Vec<(&str, &str)> = catalog_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut _handler, mut functions) = (None, None);
    let api = match (args.target.as_str(), &args.url) {
        ("local", Some(url)) => url.trim_end_matches('/').to_owned(),
        ("local", None) => {
            // With an operator key, as tenants' credentials need one.
            let (handler, _) = Handler::start_with_env(
                args.handler.as_deref(),
                &dir.0,
                // The receivers are on loopback: tenants' webhooks reach them only through an allowed network.
                &["--retry-schedule", schedule, "--disable-after", disable_after, "--allowed-networks", "127.0.0.0/8"],
                &[&[("DISPATCHER_API_KEY", OPERATOR_KEY)], &catalog_env[..]].concat(),
            )
            .map_err(anyhow::Error::msg)?;
            let api = handler.api.clone();
            _handler = Some(handler);
            api
        }
        ("functions", Some(url)) => url.trim_end_matches('/').to_owned(),
        ("functions", None) => {
            let env = [
                &[("DISPATCHER_RETRY_SCHEDULE", schedule), ("DISPATCHER_DISABLE_AFTER", disable_after)],
                &catalog_env[..],
            ]
            .concat();
            let (cosmos, service_bus) = (args.cosmos_endpoint.as_deref(), args.service_bus_emulator.as_deref());
            let target = FunctionsTarget::start(args.handler.as_deref(), cosmos, service_bus, &env).await?;
            let api = target.api.clone();
            functions = Some(target);
            api
        }
        (other, _) => bail!("--target {other:?}: the targets are `local` and `functions`"),
    };
    // The target started here takes the key it was started with; one already running, the key given.
    let started_here = args.url.is_none();
    let key = args.functions_key.clone().or_else(|| started_here.then(|| OPERATOR_KEY.to_owned()));
    let client = api_client(key.as_deref())?;
    if args.url.is_some() {
        wait_until_ready(&client, &api, args.wait).await?;
    }
    let producer = Producer::new(args.service_bus.as_deref(), &args.events_queue, &api, client.clone())
        .map_err(anyhow::Error::msg)?;
    let ctx = Ctx { api, client, producer, consumer, secrets: Mutex::default(), functions };
    let (status, catalog) =
        ctx.call(reqwest::Method::GET, "/events/catalog", None).await.map_err(anyhow::Error::msg)?;
    anyhow::ensure!(status == 200, "GET /events/catalog answered {status}: {catalog}");
    let events: Vec<String> = catalog["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some(e["name"].as_str()?.to_owned()))
        .collect();
    let playable = scenarios(&events);
    anyhow::ensure!(!playable.is_empty(), "no scenario plays on a catalog of {events:?}");
    if events.iter().any(|e| e == "ping:all") {
        original::register(&ctx).await.map_err(anyhow::Error::msg)?;
    }
    let (mut passed, mut failed) = (0, 0);
    let selected = playable.into_iter().filter(|s| args.only.as_ref().is_none_or(|o| s.name.contains(o)));
    for Scenario { name, play } in selected {
        let started = Instant::now();
        let outcome = play(&ctx).await;
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
    dispatcher::adapters::tls::build(dispatcher::adapters::tls::builder().default_headers(headers))
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
        tokio::time::sleep(Duration::from_millis(50)).await;
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

// After `check!`, which they use.
mod callbacks;
mod downstream;
mod original;
mod ours;
mod policy;
mod tenants;
mod two_way;

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

    /// Publishes an event, and checks that the dispatcher made `expected` deliveries of it where it can tell:
    /// the API's answer in local mode, the Functions host stand-in's outputs on Azure. A Functions host running
    /// elsewhere does not tell; the scenarios' receipts are checked all the same.
    async fn publish(&self, event: Value, expected: u64) -> Outcome {
        self.publish_with(event, expected, None).await
    }

    async fn publish_with(&self, event: Value, expected: u64, correlation_id: Option<&str>) -> Outcome {
        if let Some(deliveries) = self.publish_counted(&event, correlation_id, None).await? {
            check!(deliveries == expected, "{event}: {deliveries} deliveries, expected {expected}");
        }
        Ok(())
    }

    /// Publishes an event (under `key`, its idempotency key or message id, when given); returns how many
    /// deliveries the dispatcher made of it, where it can tell: the API's answer in local mode, the Functions
    /// host stand-in's outputs on Azure. A Functions host running elsewhere does not tell.
    async fn publish_counted(
        &self,
        event: &Value,
        correlation_id: Option<&str>,
        key: Option<&str>,
    ) -> Result<Option<u64>, String> {
        let published = self.producer.publish_as(event, correlation_id, key).await?;
        Ok(match (published.answer["deliveries"].as_u64(), &self.functions) {
            (Some(deliveries), _) => Some(deliveries),
            // On Azure the event is routed later, by OnIncomingEvent: ask the host how many jobs it made.
            (None, Some(functions)) => Some(functions.deliveries_of(&published.id, DEADLINE).await?),
            (None, None) => None,
        })
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

    /// Waits until webhook `id` has a skipped delivery in its log; returns its id.
    async fn skipped_delivery(&self, id: &str) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let (_, page) = self.call(reqwest::Method::GET, &format!("/webhooks/{id}/deliveries"), None).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if let Some(skipped) = items.iter().find(|d| d["status"] == "skipped") {
                return Ok(skipped["id"].as_str().unwrap_or_default().to_owned());
            }
            check!(started.elapsed() < DEADLINE, "webhook {id}: no skipped delivery after {DEADLINE:?}: {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
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
