//! Tenants under concurrent requests: a burst of registrations at a tenant's limit, and tokens issued while
//! their tenant is deleted.

use crate::tenants::{issue, local, Credential, Runtime};
use serde_json::{json, Value};

/// Races between requests: a burst of registrations at the limit lets exactly one through, and no token issued
/// while its tenant is deleted opens a tenant created later under the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_keeps_the_limit_and_a_deleted_tenant_s_tokens_never_open_its_successor() {
    let (_runtime, api) = local("tenants-races", &[]).await;
    let operator = Credential::Operator;
    api.expect(&operator, "POST", "/tenants", json!({"id": "tn", "name": "T", "maxWebhooks": 2}), 201).await;
    let (_, token) = issue(&api, "tn", json!({"name": "t"})).await;
    let tenant = Credential::Bearer(token);
    let body = json!({"url": "https://t.example/hook", "subscriptions": ["ping"]});
    api.expect(&tenant, "POST", "/webhooks", body.clone(), 201).await;
    let burst = (0..12).map(|_| api.call(&tenant, "POST", "/webhooks", Some(&body)));
    let statuses: Vec<u16> =
        futures_util::future::join_all(burst).await.into_iter().map(|(status, _, _)| status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 409].contains(s)), "{statuses:?}");

    for round in 0..5 {
        // The tenant's own registrations race its delete too: none may outlive it.
        let (_, live) = issue(&api, "tn", json!({"name": format!("live-{round}")})).await;
        let live = Credential::Bearer(live);
        let registering = (0..4).map(|_| api.call(&live, "POST", "/webhooks", Some(&body)));
        let names: Vec<Value> = (0..6).map(|i| json!({"name": format!("r{round}-{i}")})).collect();
        let issuing = names.iter().map(|name| api.call(&operator, "POST", "/tenants/tn/tokens", Some(name)));
        let deleting = api.call(&operator, "DELETE", "/tenants/tn?cascade=true", None);
        let (issued, _, _) = tokio::join!(
            futures_util::future::join_all(issuing),
            futures_util::future::join_all(registering),
            deleting
        );
        api.expect(&operator, "POST", "/tenants", json!({"id": "tn", "name": "T again"}), 201).await;
        for (status, _, answer) in issued.into_iter().filter(|(status, _, _)| *status == 201) {
            let old = Credential::Bearer(answer["token"].as_str().unwrap().to_owned());
            let (refused, text, _) = api.call(&old, "GET", "/webhooks", None).await;
            assert_eq!(
                refused, 401,
                "round {round}: a token of the deleted tenant ({status}) opened its successor: {text}"
            );
        }
        assert!(
            api.expect(&operator, "GET", "/webhooks", Value::Null, 200)
                .await
                .as_array()
                .unwrap()
                .iter()
                .all(|w| w["tenant"] != "tn"),
            "round {round}: the deleted tenant's webhooks went with it"
        );
    }
}

/// A tenant delete cut short leaves webhooks whose tenant is gone: `DELETE ?cascade=true` takes them away (a
/// plain DELETE still says the tenant does not exist), before a tenant created under the same id would own them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cascade_delete_takes_away_the_webhooks_a_delete_cut_short_left() {
    let (runtime, api) = local("tenants-orphans", &[]).await;
    let Runtime::Local(dispatcher) = &runtime else { unreachable!("a local runtime") };
    let operator = Credential::Operator;
    api.expect(&operator, "POST", "/tenants", json!({"id": "gone", "name": "G"}), 201).await;
    let body = json!({"url": "https://g.example/hook", "subscriptions": ["ping"], "tenant": "gone"});
    let webhook = api.expect(&operator, "POST", "/webhooks", body, 201).await;
    // The tenant's record removed as a delete that stopped before its webhooks would have.
    let db = rusqlite::Connection::open(dispatcher.data_dir.join("dispatcher.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(db.execute("DELETE FROM tenants WHERE id = 'gone'", []).unwrap(), 1);
    api.expect(&operator, "DELETE", "/tenants/gone", Value::Null, 404).await;
    api.expect(&operator, "DELETE", "/tenants/gone?cascade=true", Value::Null, 204).await;
    api.expect(&operator, "GET", &format!("/webhooks/{}", webhook["id"].as_str().unwrap()), Value::Null, 404).await;
    api.expect(&operator, "DELETE", "/tenants/gone?cascade=true", Value::Null, 404).await;
}
