//! Tenants: two integrators with different `serviceId` grants register their own webhooks with their own tokens;
//! `profile:completed` reaches each one's webhook for its own service only; a tenant naming another's service is
//! refused; narrowing a grant stops routing at once. The dispatcher must let its guard through to this agent's
//! receivers (DISPATCHER_ALLOWED_NETWORKS), as the targets this agent starts do.

use super::{Ctx, Outcome, Scenario};
use serde_json::{json, Value};
use std::time::Duration;

pub(super) fn scenarios() -> Vec<Scenario> {
    vec![Scenario::new("tenants receive their own services' subscribers, until a grant is narrowed", |c| {
        Box::pin(grants(c))
    })]
}

/// `method path` as a tenant: its token, and none of the operator's key this agent's client sends.
async fn as_tenant(token: &str, method: reqwest::Method, url: String, body: Value) -> Result<(u16, Value), String> {
    let client = dispatcher::adapters::tls::client().map_err(|e| e.to_string())?;
    let response = client.request(method, &url).bearer_auth(token).json(&body).send().await;
    let response = response.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn grants(c: &Ctx) -> Outcome {
    // Ids of this run's own: a dispatcher already running (`--url`) may hold a previous run's.
    let run = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
    );
    let mut tokens = Vec::new();
    for (tenant, service) in [("a", "tenantAService1"), ("b", "tenantBService1")] {
        let id = format!("t{tenant}-{run}");
        let body =
            json!({"id": id, "name": format!("Tenant {tenant}"), "grants": {"serviceId": [format!("{service}{run}")]}});
        let (status, created) = c.call(reqwest::Method::POST, "/tenants", Some(body)).await?;
        check!(status == 201, "creating tenant {id}: {status} {created}");
        let (status, issued) =
            c.call(reqwest::Method::POST, &format!("/tenants/{id}/tokens"), Some(json!({"name": "agent"}))).await?;
        check!(status == 201, "a token for {id}: {status} {issued}");
        tokens.push((id, format!("{service}{run}"), issued["token"].as_str().unwrap_or_default().to_owned()));
    }
    for (tenant, service, token) in &tokens {
        let hook = format!("{tenant}-hook");
        let body = json!({"url": c.consumer.url(&hook), "subscriptions": ["service:subscribed"], "attributes": {"serviceId": service}});
        let (status, created) = as_tenant(token, reqwest::Method::POST, format!("{}/webhooks", c.api), body).await?;
        check!(status == 201 && created["tenant"] == json!(tenant), "{tenant} registering: {status} {created}");
        c.set_secret(&hook, created["secret"].as_str().unwrap_or_default());
    }
    // Tenant a may not take b's service.
    let (a, b) = (&tokens[0], &tokens[1]);
    let body = json!({"url": c.consumer.url("stolen"), "subscriptions": ["service:subscribed"], "attributes": {"serviceId": b.1}});
    let (status, refused) = as_tenant(&a.2, reqwest::Method::POST, format!("{}/webhooks", c.api), body).await?;
    check!(status == 422 && refused.to_string().contains(&b.1), "a taking b's service: {status} {refused}");

    let completed = json!({"name": "profile:completed", "payload": {"fiscalCode": "AAABBB00A00A000B", "servicePreferencesMode": "AUTO"}});
    c.publish_counted(&completed, None, None).await?;
    let (hook_a, hook_b) = (format!("{}-hook", a.0), format!("{}-hook", b.0));
    c.received(&hook_a, 1).await?;
    c.received(&hook_b, 1).await?;
    // Narrowed: a's webhook gets nothing more, b's goes on.
    let narrowed = json!({"grants": {"serviceId": []}});
    let (status, patched) = c.call(reqwest::Method::PATCH, &format!("/tenants/{}", a.0), Some(narrowed)).await?;
    check!(status == 200, "narrowing a's grant: {status} {patched}");
    c.publish_counted(&completed, None, None).await?;
    c.received(&hook_b, 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (to_a, to_b) = (c.consumer.at(&hook_a).len(), c.consumer.at(&hook_b).len());
    check!((to_a, to_b) == (1, 2), "after narrowing: a received {to_a}, b {to_b}, expected 1 and 2");
    check!(c.consumer.at("stolen").is_empty(), "the refused webhook received something");
    Ok(())
}
