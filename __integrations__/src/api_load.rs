//! `testagent api-load`: the cost of a credential. Starts `handler local` with an operator key, registers a
//! tenant's webhook, then reads it (`GET /api/v1/webhooks/{id}`) from concurrent clients with the operator's key
//! or the tenant's token, and reports requests a second and the handler's CPU time per thousand requests. Run it
//! alternately with each `--credential` to compare them (docs/performance.md).

use anyhow::bail;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use testkit::handler::Handler;
use testkit::TempDir;

const KEY: &str = "api-load-operator-key-0123456789";

#[derive(Debug, Clone, clap::Args)]
pub struct ApiLoadArgs {
    /// Who calls: `operator` (x-functions-key) or `tenant` (Authorization: Bearer dtk_…).
    #[arg(long, default_value = "operator", value_parser = ["operator", "tenant"])]
    pub credential: String,
    /// Requests to make.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The `handler` binary to start (default: the one next to this program).
    #[arg(long)]
    pub handler: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ApiLoadArgs) -> anyhow::Result<bool> {
    if args.requests == 0 || args.concurrency == 0 {
        bail!("--requests and --concurrency must be at least 1");
    }
    let dir = TempDir::new("testagent-api-load");
    let (handler, _) = Handler::start_with_env(args.handler.as_deref(), &dir.0, &[], &[("DISPATCHER_API_KEY", KEY)])
        .map_err(anyhow::Error::msg)?;
    let pid = handler.child.id();
    let client =
        dispatcher::adapters::tls::build(dispatcher::adapters::tls::builder().pool_max_idle_per_host(args.concurrency))
            .map_err(anyhow::Error::msg)?;
    let operator = |request: reqwest::RequestBuilder| request.header("x-functions-key", KEY);
    let tenant = json!({"id": "load", "name": "Load", "grants": {"serviceId": ["aServiceId12345"]}});
    expect(operator(client.post(format!("{}/tenants", handler.api))).json(&tenant), 201).await?;
    let issued = expect(
        operator(client.post(format!("{}/tenants/load/tokens", handler.api))).json(&json!({"name": "load"})),
        201,
    )
    .await?;
    let token = issued["token"].as_str().unwrap_or_default().to_owned();
    let webhook =
        json!({"id": "load-0", "url": "https://load.example/hook", "subscriptions": ["ping"], "tenant": "load"});
    expect(operator(client.post(format!("{}/webhooks", handler.api))).json(&webhook), 201).await?;
    let header = match args.credential.as_str() {
        "tenant" => ("authorization", format!("Bearer {token}")),
        _ => ("x-functions-key", KEY.to_owned()),
    };

    let before = crate::load::resources(pid);
    let (next, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let url = format!("{}/webhooks/load-0", handler.api);
    let t0 = Instant::now();
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, header, next, failures) =
                (client.clone(), url.clone(), header.clone(), next.clone(), failures.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < args.requests {
                    let answered = client.get(&url).header(header.0, &header.1).send().await;
                    if !matches!(answered, Ok(ref r) if r.status() == 200) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await?;
    }
    let elapsed = t0.elapsed();
    let cpu = crate::load::cpu_since(crate::load::resources(pid), before);
    let report = json!({
        "credential": args.credential,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "failures": failures.load(Ordering::Relaxed),
        "requestsPerSecond": args.requests as f64 / elapsed.as_secs_f64(),
        "handlerCpuMsPer1000": cpu.map(|s| s * 1000.0 / args.requests as f64 * 1000.0),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} requests as {}: {:.0} requests/s, handler CPU {:.1} ms per 1000, {} failures",
            args.requests,
            args.credential,
            report["requestsPerSecond"].as_f64().unwrap_or_default(),
            report["handlerCpuMsPer1000"].as_f64().unwrap_or(f64::NAN),
            report["failures"]
        );
    }
    Ok(failures.load(Ordering::Relaxed) == 0)
}

async fn expect(request: reqwest::RequestBuilder, status: u16) -> anyhow::Result<Value> {
    let response = request.send().await?;
    if response.status().as_u16() != status {
        bail!("{} {}", response.status(), response.text().await.unwrap_or_default());
    }
    Ok(response.json().await.unwrap_or(Value::Null))
}
