//! The webhook consumer of the scenarios: receivers at `/{hook}` that record every request (headers, body,
//! arrival) and answer as told per hook (a status, a delay, failing the first k requests). Signatures are
//! checked with the `standardwebhooks` crate, an implementation independent of the dispatcher's.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a hook answers.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    pub status: u16,
    pub delay: Duration,
    /// The first this many requests get 503 (or `fail_with`).
    pub fail_first: usize,
    /// The body of the answers (JSON).
    pub body: &'static str,
    /// The first `fail_first` requests get 200 with this body instead of 503: an answer whose body says it
    /// failed, as GraphQL endpoints give.
    pub fail_with: Option<&'static str>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour { status: 204, delay: Duration::ZERO, fail_first: 0, body: "", fail_with: None }
    }
}

/// One request a hook received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the Standard Webhooks signature verifies with `secret` (`whsec_...`).
    pub fn verify(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret).is_ok_and(|w| w.verify(&self.body, &self.headers).is_ok())
    }
}

#[derive(Default)]
struct Hooks {
    received: HashMap<String, Vec<Received>>,
    behaviours: HashMap<String, Behaviour>,
    /// How hooks without a behaviour of their own answer.
    default: Behaviour,
    requests: HashMap<String, usize>,
    /// Standing receivers (`testagent receive`): print one JSON line per request, verified with this secret.
    report: Option<Report>,
}

#[derive(Clone)]
struct Report {
    port: u16,
    secret: Option<String>,
}

#[derive(Clone)]
pub struct Consumer {
    pub base: String,
    hooks: Arc<Mutex<Hooks>>,
    /// The internal APIs' stand-ins, served beside the hooks (`/apis/...`).
    pub apis: crate::apis::Apis,
}

impl Consumer {
    /// Serves the hooks on a free port of 127.0.0.1; or of every interface, named `advertise` in their URLs
    /// (for a dispatcher on another host).
    pub async fn start(advertise: Option<&str>) -> anyhow::Result<Consumer> {
        let interface = if advertise.is_some() { "0.0.0.0" } else { "127.0.0.1" };
        let listener = tokio::net::TcpListener::bind((interface, 0)).await?;
        Consumer::serve(listener, Hooks::default(), advertise)
    }

    fn serve(listener: tokio::net::TcpListener, hooks: Hooks, advertise: Option<&str>) -> anyhow::Result<Consumer> {
        let hooks = Arc::new(Mutex::new(hooks));
        let apis = crate::apis::Apis::default();
        let app = Router::new().route("/{hook}", post(receive)).with_state(hooks.clone()).merge(apis.router());
        let address = listener.local_addr()?;
        let base = match advertise {
            Some(host) => format!("http://{host}:{}", address.port()),
            None => format!("http://{address}"),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Consumer { base, hooks, apis })
    }

    pub fn url(&self, hook: &str) -> String {
        format!("{}/{hook}", self.base)
    }

    pub fn behave(&self, hook: &str, behaviour: Behaviour) {
        if let Ok(mut hooks) = self.hooks.lock() {
            hooks.behaviours.insert(hook.to_owned(), behaviour);
        }
    }

    /// What `hook` received so far, in order.
    pub fn at(&self, hook: &str) -> Vec<Received> {
        self.hooks.lock().map(|h| h.received.get(hook).cloned().unwrap_or_default()).unwrap_or_default()
    }
}

async fn receive(
    State(hooks): State<Arc<Mutex<Hooks>>>,
    Path(hook): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(HeaderName, &'static str); 1], &'static str) {
    let at = std::time::Instant::now();
    let (behaviour, n) = match hooks.lock() {
        Ok(mut hooks) => {
            let behaviour = hooks.behaviours.get(&hook).copied().unwrap_or(hooks.default);
            let n = hooks.requests.entry(hook.clone()).or_default();
            *n += 1;
            (behaviour, *n)
        }
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, [(CONTENT_TYPE, "application/json")], ""),
    };
    tokio::time::sleep(behaviour.delay).await;
    let (status, answer) = match behaviour.fail_with {
        Some(failed) if n <= behaviour.fail_first => (StatusCode::OK, failed),
        None if n <= behaviour.fail_first => (StatusCode::SERVICE_UNAVAILABLE, ""),
        _ => (StatusCode::from_u16(behaviour.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), behaviour.body),
    };
    let received = Received { headers, body, at };
    if let Ok(mut hooks) = hooks.lock() {
        if let Some(report) = &hooks.report {
            println!("{}", report.line(&hook, &received, status));
        }
        hooks.received.entry(hook).or_default().push(received);
    }
    (status, [(CONTENT_TYPE, "application/json")], answer)
}

impl Report {
    /// One request as a JSON line: where it arrived, its id and timestamp, whether its signature verifies
    /// (absent without a secret), the answer given, and the body.
    fn line(&self, hook: &str, received: &Received, status: StatusCode) -> Value {
        let mut line = serde_json::json!({
            "port": self.port,
            "hook": hook,
            "webhookId": received.header("webhook-id"),
            "webhookTimestamp": received.header("webhook-timestamp"),
            "answered": status.as_u16(),
            "body": String::from_utf8_lossy(&received.body),
        });
        if let Some(secret) = &self.secret {
            line["verified"] = received.verify(secret).into();
        }
        line
    }
}

/// `testagent receive`: standing webhook receivers on the given ports, for a dispatcher running elsewhere
/// (a container stack, a deployment).
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiveArgs {
    /// `PORT` or `PORT=SPEC`, SPEC a comma list of: a status to answer (default 204), `fail-first=K` (503 to the
    /// first K requests of each hook), `delay=MS` (milliseconds before answering). Repeat for more receivers.
    /// A webhook's URL is then http://<this host>:PORT/<any name>.
    #[arg(long = "receiver", required = true)]
    pub receivers: Vec<String>,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
    /// The webhooks' signing secret (`whsec_...`): every request is then verified.
    #[arg(long, env = "TESTAGENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// Reads `PORT[=SPEC]`; the error names the part that is wrong.
pub fn parse_receiver(text: &str) -> Result<(u16, Behaviour), String> {
    let (port, spec) = text.split_once('=').unwrap_or((text, ""));
    let port = port.parse::<u16>().map_err(|_| format!("--receiver {text:?}: {port:?} is not a port"))?;
    let mut behaviour = Behaviour::default();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("--receiver {text:?}: {part:?} is not a status, fail-first=K or delay=MS");
        match part.split_once('=') {
            None => behaviour.status = part.parse().ok().filter(|s| (100..600).contains(s)).ok_or_else(bad)?,
            Some(("fail-first", k)) => behaviour.fail_first = k.parse().map_err(|_| bad())?,
            Some(("delay", ms)) => behaviour.delay = Duration::from_millis(ms.parse().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
        }
    }
    Ok((port, behaviour))
}

/// Serves the receivers until interrupted, printing one JSON line per request.
pub async fn receive_forever(args: ReceiveArgs) -> anyhow::Result<bool> {
    let receivers = args.receivers.iter().map(|r| parse_receiver(r)).collect::<Result<Vec<_>, _>>();
    let receivers = receivers.map_err(anyhow::Error::msg)?;
    let mut consumers = Vec::new();
    for (port, behaviour) in receivers {
        let listener = tokio::net::TcpListener::bind((args.bind.as_str(), port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}:{port}: {e}", args.bind))?;
        let port = listener.local_addr()?.port();
        let report = Report { port, secret: args.secret.clone() };
        let hooks = Hooks { default: behaviour, report: Some(report), ..Hooks::default() };
        let consumer = Consumer::serve(listener, hooks, None)?;
        eprintln!("receiving on {} ({behaviour:?})", consumer.base);
        consumers.push(consumer);
    }
    let _ = tokio::signal::ctrl_c().await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_are_read_with_their_behaviour() {
        let (port, b) = parse_receiver("9001").unwrap();
        assert_eq!((port, b.status, b.fail_first, b.delay), (9001, 204, 0, Duration::ZERO));
        let (port, b) = parse_receiver("9002=410,fail-first=2,delay=150").unwrap();
        assert_eq!((port, b.status, b.fail_first, b.delay), (9002, 410, 2, Duration::from_millis(150)));
        assert_eq!(parse_receiver("http").unwrap_err(), "--receiver \"http\": \"http\" is not a port");
        assert_eq!(
            parse_receiver("9003=soon").unwrap_err(),
            "--receiver \"9003=soon\": \"soon\" is not a status, fail-first=K or delay=MS"
        );
    }
}
