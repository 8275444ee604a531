//! `testagent load`: publishes events to a `handler local` from concurrent clients, receives every delivery,
//! and reports ingest rate, delivery rate, publish→receipt latency, and the handler's CPU time and memory.
//! Every expected delivery id is computed in advance, so each run also checks exactly-once arrival.

use crate::receiver::Receiver;
use anyhow::bail;
use dispatcher_core::dispatch::delivery_id;
use dispatcher_core::inbound::received;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::handler::Handler;
use testkit::TempDir;

const PING_BODY: &str = r#"{"name":"ping","payload":{}}"#;

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Webhooks to register; with more than one, every event is a `ping:all` fanned out to all of them.
    #[arg(long, default_value_t = 1)]
    pub webhooks: usize,
    /// Events to publish.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Concurrent publishing clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Hold every delivery until all events are published, then measure how fast the backlog drains.
    #[arg(long)]
    pub backlog: bool,
    /// The `handler` binary to start (default: the one next to this program).
    #[arg(long)]
    pub handler: Option<PathBuf>,
    /// Extra arguments for `handler local`, e.g. `--handler-arg=--concurrency=128`.
    #[arg(long = "handler-arg")]
    pub handler_args: Vec<String>,
    /// Give up when no delivery arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    pub stall_seconds: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How the webhooks authenticate to the receiver: `none`, `bearer`, or `oauth2` (tokens from the OpenID
    /// provider of the tests, started for the run).
    #[arg(long, default_value = "none", value_parser = ["none", "bearer", "oauth2"])]
    pub auth: String,
    /// Give every webhook a transform (a typical reshape), to compare with a run without.
    #[arg(long)]
    pub transform: bool,
    /// Post the events as a provider's webhooks to a source (`POST /in/load`, signed as Standard Webhooks, each
    /// verified and checked for a repeat) instead of publishing them; the webhooks subscribe to `load:*`.
    #[arg(long, conflicts_with = "transform")]
    pub inbound: bool,
}

/// The source of `--inbound`, and the secret its requests are signed with.
const SOURCE: &str = "load";
const SOURCE_SECRET: &str = "whsec_bG9hZC1zb3VyY2Utc2lnbmluZy1zZWNyZXQtMzJi";

/// The body a provider posts for event `k` in `--inbound`, and what the webhooks receive of it.
fn inbound_body(k: usize) -> String {
    format!(r#"{{"type":"tick","n":{k}}}"#)
}

fn received_body(k: usize) -> String {
    format!(r#"{{"name":"{SOURCE}:tick","payload":{}}}"#, inbound_body(k))
}

/// The reshape `--transform` gives every webhook, and the body it makes of a ping for webhook `id`.
const TRANSFORM: &str = "#{ type: body.name, hook: attributes.name, received: true }";

fn transformed_ping(id: &str) -> String {
    format!(r#"{{"hook":"{id}","received":true,"type":"ping"}}"#)
}

/// The CPU seconds a process used between two readings of [`resources`].
pub(crate) fn cpu_since(now: Option<(f64, u64, u64)>, before: Option<(f64, u64, u64)>) -> Option<f64> {
    now.map(|r| r.0 - before.map_or(0.0, |b| b.0))
}

/// CPU seconds used and the resident set (now and peak, in bytes) of a process, from /proc.
pub(crate) fn resources(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, in clock ticks of 1/100 s).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((ticks as f64 / 100.0, kib("VmRSS:")? * 1024, kib("VmHWM:")? * 1024))
}

/// Event `k` of `--inbound` as its provider posts it: the body, signed as Standard Webhooks under id `load-k`.
fn signed(request: reqwest::RequestBuilder, k: usize) -> reqwest::RequestBuilder {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (id, body) = (format!("load-{k}"), inbound_body(k));
    let signature = standardwebhooks::Webhook::new(SOURCE_SECRET)
        .and_then(|w| w.sign(&id, now, body.as_bytes()))
        .unwrap_or_default();
    request
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

pub async fn run(args: LoadArgs) -> anyhow::Result<bool> {
    if args.webhooks == 0 || args.events == 0 || args.concurrency == 0 {
        bail!("--webhooks, --events and --concurrency must be at least 1");
    }
    let dir = TempDir::new("testagent-load");
    let handler_args: Vec<&str> = args.handler_args.iter().map(String::as_str).collect();
    // Readiness counts on an existing data dir, as after a deploy or a crash: create it with a first start.
    drop(Handler::start(args.handler.as_deref(), &dir.0, &handler_args).map_err(anyhow::Error::msg)?);
    let (handler, ready) =
        Handler::start(args.handler.as_deref(), &dir.0, &handler_args).map_err(anyhow::Error::msg)?;
    let pid = handler.child.id();
    let receiver = Receiver::start(!args.backlog).await?;
    let client =
        dispatcher::adapters::tls::build(dispatcher::adapters::tls::builder().pool_max_idle_per_host(args.concurrency))
            .map_err(anyhow::Error::msg)?;

    // Kept for the run: the token endpoint of `--auth oauth2`.
    let provider = match args.auth.as_str() {
        "oauth2" => Some(testkit::oidc::Provider::start(&[("TOKEN_TTL", "3600")]).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let auth = match &provider {
        Some(provider) => json!({"type": "oauth2", "issuer": provider.issuer, "clientId": "dispatcher",
                                 "clientSecret": "dispatcher-s3cret", "scope": "deliveries"}),
        None if args.auth == "bearer" => json!({"type": "bearer", "token": "load-t0ken"}),
        None => Value::Null,
    };
    if args.inbound {
        let source = json!({"id": SOURCE, "verify": {"type": "standard-webhooks", "secrets": [SOURCE_SECRET]}});
        let response = client.post(format!("{}/sources", handler.api)).json(&source).send().await?;
        if response.status() != 201 {
            bail!("cannot create the source: {} {}", response.status(), response.text().await.unwrap_or_default());
        }
    }
    let subscriptions = if args.inbound { json!([format!("{SOURCE}:*")]) } else { json!(["ping"]) };
    let webhook_ids: Vec<String> = (0..args.webhooks).map(|i| format!("load-{i}")).collect();
    for id in &webhook_ids {
        let mut body = json!({"id": id, "url": format!("{}/{id}", receiver.base), "subscriptions": subscriptions,
                              "attributes": {"name": id}, "auth": auth});
        if args.transform {
            body["transform"] = Value::from(TRANSFORM);
        }
        let response = client.post(format!("{}/webhooks", handler.api)).json(&body).send().await?;
        if response.status() != 201 {
            bail!("cannot register {id}: {} {}", response.status(), response.text().await.unwrap_or_default());
        }
    }
    let idle = resources(pid);
    let load_idle = resources(std::process::id());

    // Event k is published with idempotency key "load-k", which fixes the ids of its deliveries.
    let event = if args.webhooks == 1 {
        json!({"name": "ping", "payload": {"name": "load-0"}})
    } else {
        json!({"name": "ping:all"})
    };
    let (transform, inbound) = (args.transform, args.inbound);
    let expected: HashMap<String, usize> = (0..args.events)
        .flat_map(|k| {
            // A received event's id comes from its source and the provider's (signed) id of it.
            let key = match inbound {
                true => received::event_id(SOURCE, &received::repeat_key(Some(&format!("load-{k}")), true, b"")),
                false => format!("load-{k}"),
            };
            webhook_ids
                .iter()
                .map(move |w| {
                    let body = match (inbound, transform) {
                        (true, _) => received_body(k),
                        (false, true) => transformed_ping(w),
                        (false, false) => PING_BODY.to_owned(),
                    };
                    (delivery_id(&key, &w.as_str().into(), &body).to_string(), k)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let total_expected = expected.len() as u64;

    let progress =
        if args.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total_expected) };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} deliveries ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    progress.set_message("publishing");

    let t0 = Instant::now();
    let published_at: Arc<Vec<AtomicU64>> = Arc::new((0..args.events).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, api, event) = (client.clone(), handler.api.clone(), event.to_string());
        let (next, published_at, failures, events) =
            (next.clone(), published_at.clone(), failures.clone(), args.events);
        publishers.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= events {
                    break;
                }
                published_at[k].store(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let request = match inbound {
                    true => signed(client.post(format!("{api}/in/{SOURCE}")), k),
                    false => client
                        .post(format!("{api}/events"))
                        .header("idempotency-key", format!("load-{k}"))
                        .body(event.clone()),
                };
                let sent = request.header("content-type", "application/json").send().await;
                if !matches!(sent, Ok(ref r) if r.status() == 202) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut publishing = true;
    let mut ingest = Duration::ZERO;
    let mut released_at = None;
    let mut last_progress = (0u64, Instant::now());
    loop {
        if publishing && publishers.iter().all(|p| p.is_finished()) {
            publishing = false;
            ingest = t0.elapsed();
            if args.backlog {
                released_at = Some(t0.elapsed());
                receiver.open();
            }
            progress.set_message("delivering");
        }
        let received = receiver.total();
        progress.set_position(received);
        if !publishing && received >= total_expected {
            break;
        }
        if received != last_progress.0 {
            last_progress = (received, Instant::now());
        } else if (!args.backlog || !publishing) && last_progress.1.elapsed() > Duration::from_secs(args.stall_seconds)
        {
            progress.abandon_with_message("stalled");
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    progress.finish_and_clear();
    // Late duplicates would arrive shortly after: give them a moment to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let loaded = resources(pid);
    let load_cpu = cpu_since(resources(std::process::id()), load_idle);

    let arrivals = receiver.arrivals.lock().map_err(|_| anyhow::anyhow!("receiver poisoned"))?;
    let mut latencies_ms = Vec::with_capacity(expected.len());
    let (mut first_arrival, mut last_arrival) = (None::<Instant>, None::<Instant>);
    for (id, k) in &expected {
        if let Some((_, at)) = arrivals.by_id.get(id) {
            let sent = Duration::from_nanos(published_at[*k].load(Ordering::Relaxed));
            latencies_ms.push(((*at - t0).saturating_sub(sent)).as_secs_f64() * 1000.0);
            first_arrival = Some(first_arrival.map_or(*at, |f| f.min(*at)));
            last_arrival = Some(last_arrival.map_or(*at, |l| l.max(*at)));
        }
    }
    let lost = expected.len() - latencies_ms.len();
    let duplicates: u64 = arrivals.by_id.values().map(|(n, _)| u64::from(n.saturating_sub(1))).sum();
    let unexpected = arrivals.by_id.keys().filter(|id| !expected.contains_key(*id)).count();
    latencies_ms.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        latencies_ms
            .get(((latencies_ms.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let delivery_window = match (released_at, last_arrival) {
        (Some(released), Some(last)) => (last - t0).saturating_sub(released),
        (None, Some(last)) => last - t0,
        _ => Duration::ZERO,
    };
    let report = json!({
        "webhooks": args.webhooks,
        "events": args.events,
        "publishers": args.concurrency,
        "backlog": args.backlog,
        "deliveriesExpected": total_expected,
        "deliveriesReceived": latencies_ms.len(),
        "lost": lost,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "publishFailures": failures.load(Ordering::Relaxed),
        "ingestMs": ingest.as_secs_f64() * 1000.0,
        "firstArrivalMs": first_arrival.map(|at| (at - t0).as_secs_f64() * 1000.0),
        "ingestPerSecond": args.events as f64 / ingest.as_secs_f64(),
        "deliveriesPerSecond": latencies_ms.len() as f64 / delivery_window.as_secs_f64().max(1e-9),
        "latencyMs": {"p50": percentile(0.50), "p95": percentile(0.95), "p99": percentile(0.99), "max": percentile(1.0)},
        "handler": {
            "readyMs": ready.as_secs_f64() * 1000.0,
            "idleRssMb": idle.map(|r| r.1 as f64 / 1048576.0),
            "peakRssMb": loaded.map(|r| r.2 as f64 / 1048576.0),
            "cpuSeconds": cpu_since(loaded, idle),
        },
        // This tool's own share of the machine: its publishers and receivers run beside the handler.
        "loadCpuSeconds": load_cpu,
        "auth": args.auth,
        "inbound": args.inbound,
        // With `--auth oauth2`: how many tokens the provider issued for the whole run.
        "oauth2Tokens": provider.as_ref().map(|p| p.tokens().len()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(lost == 0 && duplicates == 0 && unexpected == 0 && failures.load(Ordering::Relaxed) == 0)
}

fn print_table(r: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    let mode = match (r["backlog"] == json!(true), r["inbound"] == json!(true)) {
        (true, _) => "backlog drain",
        (false, true) => "live, inbound webhooks (POST /in/load, verified)",
        (false, false) => "live",
    };
    println!("{} webhook(s), {} events, {} publishers, {mode}", r["webhooks"], r["events"], r["publishers"]);
    println!("| measure | value |\n|---|---|");
    println!("| ingest (accepted events/s) | {} |", f(&r["ingestPerSecond"]));
    println!("| delivery rate (deliveries/s) | {} |", f(&r["deliveriesPerSecond"]));
    let l = &r["latencyMs"];
    println!(
        "| publish→receipt p50 / p95 / p99 / max (ms) | {} / {} / {} / {} |",
        f(&l["p50"]),
        f(&l["p95"]),
        f(&l["p99"]),
        f(&l["max"])
    );
    let h = &r["handler"];
    println!("| handler ready (ms) | {} |", f(&h["readyMs"]));
    println!("| handler RSS idle / peak (MB) | {} / {} |", f(&h["idleRssMb"]), f(&h["peakRssMb"]));
    println!("| handler CPU (s) | {} |", f(&h["cpuSeconds"]));
    if let Some(tokens) = r["oauth2Tokens"].as_u64() {
        println!("| OAuth 2.0 tokens issued | {tokens} |");
    }
    println!("| load tool CPU: publishers and receivers (s) | {} |", f(&r["loadCpuSeconds"]));
    println!(
        "| received / expected, lost, duplicates | {} / {}, {}, {} |",
        r["deliveriesReceived"], r["deliveriesExpected"], r["lost"], r["duplicates"]
    );
}
