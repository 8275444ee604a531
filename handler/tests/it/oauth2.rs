//! `oauth2` targets against a real OpenID provider: `oidc-provider` (certified by the OpenID Foundation) in
//! `__integrations__/oidc/`, started by the tests, and `handler local` as a process. The receiver accepts only
//! tokens the provider issued, and refuses those the test revokes.

use crate::support::oidc::Provider;
use crate::support::{eventually, eventually_async, Dispatcher};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const CLIENT_SECRET: &str = "dispatcher-s3cret";

/// A protected resource: answers 200 to a bearer token the provider says is active (token introspection, RFC
/// 7662) and that the test did not revoke, 401 to anything else; records every `Authorization` it got.
#[derive(Clone, Default)]
struct Resource {
    received: Arc<Mutex<Vec<String>>>,
    revoked: Arc<Mutex<HashSet<String>>>,
}

impl Resource {
    async fn start(provider: &Provider) -> (Resource, String) {
        let resource = Resource::default();
        let state = resource.clone();
        let introspection = format!("{}/token/introspection", provider.issuer);
        let client = dispatcher::adapters::tls::client().unwrap();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let (state, introspection, client) = (state.clone(), introspection.clone(), client.clone());
            async move {
                let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                state.received.lock().unwrap().push(authorization.to_owned());
                let token = authorization.strip_prefix("Bearer ").unwrap_or_default().to_owned();
                if token.is_empty() || state.revoked.lock().unwrap().contains(&token) {
                    return StatusCode::UNAUTHORIZED;
                }
                let answer = client
                    .post(&introspection)
                    .basic_auth("dispatcher", Some(CLIENT_SECRET))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("token={token}"))
                    .send()
                    .await
                    .unwrap();
                let active = answer.json::<Value>().await.unwrap()["active"] == json!(true);
                if active {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (resource, url)
    }

    fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

async fn publish(dispatcher: &Dispatcher, name: &str, n: usize) {
    for _ in 0..n {
        dispatcher.publish(json!({"name": "ping", "payload": {"name": name}})).await;
    }
}

/// The deliveries of `webhook` as the API lists them, once `count` are settled.
async fn settled(dispatcher: &Dispatcher, webhook: &str, count: usize) -> Vec<Value> {
    let path = format!("/webhooks/{webhook}/deliveries");
    let items = Arc::new(Mutex::new(Vec::new()));
    eventually_async("the deliveries settled", WAIT, || {
        let (items, path) = (items.clone(), path.clone());
        async move {
            let page = dispatcher.get(&path).await["items"].as_array().cloned().unwrap_or_default();
            let done = page.iter().filter(|d| d["status"] == "succeeded").count() >= count;
            *items.lock().unwrap() = page;
            done
        }
    })
    .await;
    let settled = items.lock().unwrap().clone();
    settled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_many_deliveries_and_is_renewed_when_it_expires_or_is_refused() {
    // Tokens live 10 s, renewed when 2.5 s are left: time enough for the first steps on a busy machine.
    let provider = Provider::start(&[("TOKEN_TTL", "10")]).unwrap();
    let (resource, url) = Resource::start(&provider).await;
    let dispatcher = Dispatcher::start("oauth2", &["--retry-schedule", "1h"], &[]);
    let auth = json!({"type": "oauth2", "issuer": provider.issuer, "clientId": "dispatcher",
                      "clientSecret": CLIENT_SECRET, "scope": "deliveries", "audience": "https://resource.example"});
    let (webhook, _) = dispatcher
        .register(json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": "oauth"}, "auth": auth}))
        .await;

    // Ten deliveries at once: one token, fetched through discovery, with the scope asked for.
    publish(&dispatcher, "oauth", 10).await;
    eventually("ten deliveries", WAIT, || resource.received().len() >= 10).await;
    // The provider's lines are read by a thread of their own: wait for them too.
    eventually("the provider's line", WAIT, || !provider.tokens().is_empty()).await;
    let tokens = provider.tokens();
    assert_eq!(tokens.len(), 1, "one token for every delivery: {tokens:?}");
    assert_eq!((&tokens[0]["client"], &tokens[0]["scope"]), (&json!("dispatcher"), &json!("deliveries")));
    let first = format!("Bearer {}", tokens[0]["token"].as_str().unwrap());
    assert!(resource.received().iter().all(|a| *a == first), "{:?}", resource.received());

    // The resource revokes it: the next delivery's 401 fetches a new token and sends again at once, in the
    // same attempt.
    resource.revoked.lock().unwrap().insert(tokens[0]["token"].as_str().unwrap().to_owned());
    publish(&dispatcher, "oauth", 1).await;
    eventually("a second token", WAIT, || resource.received().len() >= 12).await;
    let second_fetched = std::time::Instant::now();
    eventually("the provider's line", WAIT, || provider.tokens().len() >= 2).await;
    assert_eq!(provider.tokens().len(), 2);
    let second = format!("Bearer {}", provider.tokens()[1]["token"].as_str().unwrap());
    assert_eq!(resource.received()[10..], [first.clone(), second.clone()]);
    let deliveries = settled(&dispatcher, &webhook, 11).await;
    assert!(deliveries.iter().all(|d| d["attempts"].as_array().unwrap().len() == 1), "{deliveries:?}");

    // Renewed when a quarter of its life is left.
    tokio::time::sleep(Duration::from_millis(7_600).saturating_sub(second_fetched.elapsed())).await;
    publish(&dispatcher, "oauth", 1).await;
    eventually("a third token", WAIT, || resource.received().len() >= 13).await;
    eventually("the provider's line", WAIT, || provider.tokens().len() >= 3).await;
    assert_eq!(provider.tokens().len(), 3);
    assert_eq!(resource.received()[12], format!("Bearer {}", provider.tokens()[2]["token"].as_str().unwrap()));

    let shown = dispatcher.get(&format!("/webhooks/{webhook}")).await;
    assert_eq!(
        shown["auth"],
        json!({"type": "oauth2", "issuer": provider.issuer, "clientId": "dispatcher",
        "scope": "deliveries", "audience": "https://resource.example"})
    );
    let logs = dispatcher.logs();
    assert!(!logs.contains(CLIENT_SECRET), "the client secret is never logged");
    for token in provider.tokens() {
        assert!(!logs.contains(token["token"].as_str().unwrap()), "nor a token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_in_the_form_when_the_endpoint_asks_and_a_refusal_fails_the_attempt() {
    let provider = Provider::start(&[("ONLY_POST", "1")]).unwrap();
    let (resource, url) = Resource::start(&provider).await;
    let dispatcher = Dispatcher::start("oauth2-post", &["--retry-schedule", "1h"], &[]);
    let token_url = format!("{}/token", provider.issuer);
    let register = |name: &str, secret: &str| {
        let auth = json!({"type": "oauth2", "tokenUrl": token_url, "clientId": "dispatcher", "clientSecret": secret});
        dispatcher.register(json!({"url": url, "subscriptions": ["ping"], "attributes": {"name": name}, "auth": auth}))
    };
    let (_, _) = register("post", CLIENT_SECRET).await;
    publish(&dispatcher, "post", 2).await;
    eventually("two deliveries", WAIT, || resource.received().len() >= 2).await;
    eventually("the provider's line", WAIT, || !provider.tokens().is_empty()).await;
    assert_eq!(provider.tokens().len(), 1);
    assert_eq!(provider.refusals(), 1, "Authorization once, then the form, remembered for the next token");

    let (refused, _) = register("refused", "not-the-s3cret").await;
    publish(&dispatcher, "refused", 1).await;
    let attempt = dispatcher.last_attempt(&refused).await;
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.starts_with(&format!("the token endpoint {token_url} answered HTTP 401 invalid_client")), "{error}");
    assert!(attempt["statusCode"].is_null(), "nothing was sent to the target: {attempt}");
    assert_eq!(resource.received().len(), 2);
    let page = dispatcher.get(&format!("/webhooks/{refused}/deliveries")).await;
    assert_eq!(page["items"][0]["status"], "retrying", "retried on the schedule: {page}");
    assert!(!dispatcher.logs().contains("not-the-s3cret") && !page.to_string().contains("not-the-s3cret"));
}
