//! The portal in a real browser (headless Chromium through WebDriver) against a real `handler local` and real
//! receivers: what a person does from the page alone, from signing in to replaying a failed delivery.

use crate::support::browser::Browser;
use crate::support::{eventually, eventually_async, Behaviour, Dispatcher, Receivers};
use fantoccini::key::Key;
use serde_json::json;
use std::time::Duration;

const KEY: &str = "portal-test-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_watches_a_delivery_and_replays_a_failed_one_from_the_page() {
    let Some(browser) = Browser::start("portal").await else { return };
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("portal", &[], &[("DISPATCHER_API_KEY", KEY)]);
    let portal = dispatcher.api.replace("/api/v1", "/portal/");

    // Signing in: a wrong key is refused with the API's problem details; #key= signs in and leaves the address.
    browser.client.goto(&portal).await.unwrap();
    browser.fill("API key", "not-the-key").await;
    browser.click("Sign in").await;
    browser.wait_text("#alert", "Unauthorized (HTTP 401)", 10).await;
    browser.wait_text("#alert", "the key in x-functions-key is wrong", 1).await;
    browser.screenshot("sign-in").await;
    browser.assert_accessible("sign-in").await;
    browser.client.goto(&format!("{portal}#key={KEY}")).await.unwrap();
    browser.wait_text("main", "No webhook yet", 10).await;
    assert!(browser.element("#sign-out").await.is_displayed().await.unwrap(), "signed in with a key");
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(KEY), "the key left the address bar: {url}");

    // Registering, with a field the API refuses first: its problem is shown with its place.
    browser.click("Register a webhook").await;
    browser.fill("Endpoint URL", &receivers.url("crm")).await;
    browser.fill("Description", "CRM").await;
    browser.element("input[name=subscriptions][value=ping]").await.click().await.unwrap();
    browser.fill("Attributes", r#"{"name": "crm"}"#).await;
    browser.fill("Retry schedule", "soon").await;
    browser.click("Register").await;
    browser.wait_text("#alert li", "retrySchedule", 10).await;
    browser.fill("Retry schedule", "1s").await;
    // A transform tried on a sample of the catalog before it is saved: the dispatcher runs it, nothing is kept.
    browser.fill("Transform", "#{ hello: attributes.name, event: body.name }").await;
    browser.click("Try it").await;
    browser.wait_text(".trial .results", "sent", 10).await;
    browser.wait_text(".trial .results pre", r#""hello": "crm""#, 1).await;
    browser.fill("Transform", "#{ hello: ").await;
    browser.click("Try it").await;
    browser.wait_text("#alert li", "transform", 10).await;
    browser.fill("Transform", "").await;
    let unlabelled = browser
        .run("return [...document.querySelectorAll('input, select, textarea')].filter((e) => e.labels.length === 0).length")
        .await;
    assert_eq!(unlabelled, json!(0), "every control of the form has a label");
    browser.screenshot("register").await;
    browser.assert_accessible("register").await;
    browser.click("Register").await;
    let shown = browser.wait_text("#secret-value", "whsec_", 10).await.text().await.unwrap();
    let webhooks = dispatcher.get("/webhooks").await;
    let id = webhooks[0]["id"].as_str().unwrap().to_owned();
    let secret = dispatcher.get(&format!("/webhooks/{id}/secret")).await["secret"].as_str().unwrap().to_owned();
    assert_eq!(shown, secret, "the page shows the webhook's signing secret");
    assert_eq!(
        (webhooks[0]["retrySchedule"].clone(), webhooks[0]["attributes"].clone()),
        (json!("1s"), json!({"name": "crm"}))
    );

    // The filter tester: the engine's routing, nothing sent; then publishing from the same page.
    browser.click("Filter tester").await;
    let sample = browser.element("select[name=sample]").await;
    browser.wait_text("select[name=sample] option", "ping:all", 10).await;
    sample.select_by_value("ping:all").await.unwrap();
    browser.click("See where it goes").await;
    browser.wait_text(".results", "ping:all: 1 delivery", 10).await;
    browser.wait_text(".results td", &id, 1).await;
    browser.wait_text(".results td", r#""name": "ping""#, 1).await;
    assert!(receivers.all().is_empty(), "a preview sends nothing");
    browser.screenshot("filter-tester").await;
    browser.assert_accessible("filter-tester").await;
    browser.click("Publish it").await;
    browser.wait_text("#notice", "1 deliveries", 10).await;
    eventually("the receiver gets the ping", Duration::from_secs(15), || receivers.at("crm").len() == 1).await;
    let received = receivers.at("crm")[0].clone();
    assert!(received.verify(&secret), "signed with the secret the page showed");

    // The delivery and its attempt appear on the webhook's page, with the headers sent and the signature.
    browser.client.goto(&format!("{portal}#/webhooks/{id}")).await.unwrap();
    browser.click_text("details.delivery summary", "succeeded").await;
    browser.wait_text("details.delivery td", "HTTP 200", 5).await;
    browser.click_text("summary", "headers, signature included").await;
    let signature = received.header("webhook-signature").unwrap().to_owned();
    browser.wait_text("pre.headers", &format!("webhook-signature: {signature}"), 5).await;
    let logged = dispatcher.last_attempt(&id).await;
    for name in ["content-type", "webhook-id", "webhook-timestamp", "webhook-signature"] {
        let value =
            logged["headers"].as_array().unwrap().iter().find(|h| h["name"] == name).map(|h| h["value"].clone());
        assert_eq!(value, Some(json!(received.header(name).unwrap())), "{name} as logged and as received");
    }
    browser.wait_text("details.delivery pre.json", r#""name": "ping""#, 1).await;
    browser.screenshot("webhook").await;
    browser.assert_accessible("webhook").await;

    // A failing receiver: the delivery dies after its schedule; the list shows why; a retry from the page
    // delivers it with the same id once the receiver is back.
    receivers.behave("crm", Behaviour { status: 500, ..Behaviour::default() });
    browser.click("Send a ping").await;
    browser.wait_text("#notice", "Ping queued", 10).await;
    browser.wait_text("details.delivery summary", "dead", 20).await;
    browser.click("Webhooks").await;
    browser.wait_text("table.cards td", "HTTP 500", 10).await;
    browser.wait_text("table.cards td", "50.0 %", 1).await;
    let health = dispatcher.get(&format!("/webhooks/{id}/health")).await;
    assert_eq!(
        (health["deliveries"].clone(), health["succeeded"].clone(), health["dead"].clone()),
        (json!(2), json!(1), json!(1))
    );
    assert_eq!((health["successRate"].clone(), health["lastFailure"]["status"].clone()), (json!(0.5), json!("dead")));
    assert!(health["lastFailure"]["reason"].as_str().unwrap().contains("HTTP 500"), "{health}");
    browser.screenshot("webhooks").await;
    browser.assert_accessible("webhooks").await;
    browser.client.goto(&format!("{portal}#/webhooks/{id}")).await.unwrap();
    browser.element("select[name=status]").await.select_by_value("dead").await.unwrap();
    browser.click_text("details.delivery summary", "2 attempts").await;
    browser.wait_text("details.delivery td", "HTTP 500", 5).await;
    receivers.behave("crm", Behaviour::default());
    browser.click("Retry now").await;
    eventually("the retried delivery arrives", Duration::from_secs(15), || receivers.at("crm").len() == 4).await;
    let tries = receivers.at("crm");
    assert_eq!(tries[3].header("webhook-id"), tries[1].header("webhook-id"), "a retry keeps the delivery's id");
    browser.element("select[name=status]").await.select_by_value("").await.unwrap();
    browser.wait_text("details.delivery summary", "3 attempts", 15).await;

    // Rotating the secret, after a confirmation; the old one is shown until it expires.
    browser.click("Rotate secret").await;
    browser.wait_text("dialog.confirm", "new signing secret", 5).await;
    browser.click("Rotate").await;
    browser.wait_text("#notice", "Secret rotated", 10).await;
    let rotated = dispatcher.get(&format!("/webhooks/{id}/secret")).await;
    assert_ne!(rotated["secret"], json!(secret));
    assert_eq!(rotated["previousSecret"], json!(secret));
    browser.wait_text("#secret", rotated["secret"].as_str().unwrap(), 5).await;

    // The catalog, the mapping table and the payload schemas; rejected events with their reasons.
    browser.click("Events and mapping").await;
    browser.wait_text("table.cards td", "profile:completed", 10).await;
    browser.wait_text("article.event", "Payload JSON Schema", 1).await;
    browser.screenshot("events").await;
    browser.assert_accessible("events").await;
    dispatcher.call("POST", "/events", Some(json!({"name": "profile:completed", "payload": {}}))).await;
    browser.click("Rejected events").await;
    browser.wait_text("article.rejected-event li", "payload.fiscalCode", 10).await;
    browser.assert_accessible("rejected events").await;

    // Phone width: nothing wider than the screen.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(&format!("{portal}#/webhooks")).await.unwrap();
    browser.wait_text("table.cards td", "CRM", 10).await;
    let overflow = browser.run("return document.documentElement.scrollWidth - window.innerWidth").await;
    assert!(overflow.as_i64().unwrap() <= 0, "the page is wider than a phone: {overflow}");
    browser.screenshot("webhooks-phone").await;
    browser.assert_accessible("phone-width webhooks").await;
    browser.client.set_window_size(1280, 900).await.unwrap();

    // Deleting asks first; cancelled, nothing changes.
    browser.client.goto(&format!("{portal}#/webhooks/{id}")).await.unwrap();
    browser.click("Delete").await;
    browser.wait_text("dialog.confirm", "cannot be undone", 5).await;
    browser.click("Cancel").await;
    assert_eq!(dispatcher.call("GET", &format!("/webhooks/{id}"), None).await.0, 200);
    browser.click("Delete").await;
    browser.click_text("dialog.confirm button", "Delete").await;
    browser.wait_text("main", "No webhook yet", 10).await;
    assert_eq!(dispatcher.call("GET", &format!("/webhooks/{id}"), None).await.0, 404);
    browser.client.clone().close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_the_page_opens_at_once_and_every_setting_is_edited_from_it() {
    let Some(browser) = Browser::start("portal-edit").await else { return };
    let receivers = Receivers::start().await;
    let dispatcher = Dispatcher::start("portal-edit", &[], &[]);
    let portal = dispatcher.api.replace("/api/v1", "/portal/");
    let (id, _) = dispatcher
        .register(json!({"url": receivers.url("a"), "subscriptions": ["ping"], "attributes": {"name": "a"},
                         "auth": {"type": "bearer", "token": "t0k3n-kept"}}))
        .await;

    // No key configured: no sign-in, no sign-out. The keyboard reaches the skip link first, which leads to the
    // content.
    browser.client.goto(&portal).await.unwrap();
    browser.wait_text("table.cards td", &receivers.url("a"), 10).await;
    assert!(!browser.element("#sign-out").await.is_displayed().await.unwrap(), "no sign-out without a key");
    browser.client.active_element().await.unwrap().send_keys(&Key::Tab).await.unwrap();
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Skip to content");
    focused.send_keys(&Key::Enter).await.unwrap();
    assert_eq!(browser.run("return document.activeElement.id").await, json!("main"));

    // A field that is not JSON is named before anything is sent.
    browser.client.goto(&format!("{portal}#/webhooks/{id}/edit")).await.unwrap();
    browser.fill("Filter", "{not json").await;
    browser.click("Save").await;
    browser.wait_text("#alert li", "filter: is not valid JSON", 10).await;

    // Every setting, the credentials left as they are.
    browser.fill("Description", "Orders").await;
    browser.fill("Attributes", r#"{"name": "a", "team": "blue"}"#).await;
    browser.fill("Filter", r#"{"name": ["ping"]}"#).await;
    browser.fill("Rate limit (deliveries a second)", "5").await;
    browser.fill("Success callback URL", &receivers.url("cb")).await;
    browser.fill("Fail when the answer matches", r#"{"errors": [{"exists": true}]}"#).await;
    browser.click("Save").await;
    browser.wait_text("#notice", "Saved.", 10).await;
    let saved = dispatcher.get(&format!("/webhooks/{id}")).await;
    assert_eq!(saved["description"], "Orders");
    assert_eq!(saved["attributes"], json!({"name": "a", "team": "blue"}));
    assert_eq!((saved["filter"].clone(), saved["rateLimit"].clone()), (json!({"name": ["ping"]}), json!(5)));
    assert_eq!(
        (saved["callbackUrl"].clone(), saved["failWhen"].clone()),
        (json!(receivers.url("cb")), json!({"errors": [{"exists": true}]}))
    );
    assert_eq!(saved["auth"]["type"], "bearer", "credentials left empty are kept");
    browser.click("Send a ping").await;
    eventually("the ping", Duration::from_secs(15), || receivers.at("a").len() == 1).await;
    assert_eq!(receivers.at("a")[0].header("authorization"), Some("Bearer t0k3n-kept"));
    eventually("the success callback", Duration::from_secs(15), || receivers.at("cb").len() == 1).await;

    // Removing: a key of an object, a whole setting, the credentials.
    browser.click("Edit").await;
    browser.fill("Attributes", r#"{"name": "a"}"#).await;
    browser.fill("Filter", "").await;
    browser.element("input[name=remove-auth]").await.click().await.unwrap();
    browser.click("Save").await;
    browser.wait_text("#notice", "Saved.", 10).await;
    let saved = dispatcher.get(&format!("/webhooks/{id}")).await;
    assert_eq!(saved["attributes"], json!({"name": "a"}));
    assert!(saved.get("filter").is_none() && saved.get("auth").is_none(), "{saved}");
    assert_eq!(saved["rateLimit"], 5, "what was not touched stays");

    // Disabled, an event is skipped; enabled again, recovering sends it.
    browser.click("Disable").await;
    browser.wait_text(".title-row .badge", "Disabled", 10).await;
    assert_eq!(dispatcher.get(&format!("/webhooks/{id}")).await["disabled"], true);
    dispatcher.publish(json!({"name": "ping:all"})).await;
    browser.element("select[name=status]").await.select_by_value("skipped").await.unwrap();
    browser.wait_text("details.delivery summary", "skipped", 15).await;
    browser.click("Enable").await;
    browser.wait_text(".title-row .badge", "Enabled", 10).await;
    browser.click_text("summary", "Recover failed deliveries").await;
    browser.click("Recover").await;
    browser.wait_text("#notice", "1 deliveries sent again", 10).await;
    eventually("the recovered delivery", Duration::from_secs(15), || receivers.at("a").len() == 2).await;

    // More deliveries than a page: "Show more" pages on with the API's cursor.
    for _ in 0..55 {
        dispatcher.publish(json!({"name": "ping:all"})).await;
    }
    browser.element("select[name=status]").await.select_by_value("").await.unwrap();
    let all = dispatcher.get(&format!("/webhooks/{id}/deliveries?limit=500")).await["items"].as_array().unwrap().len();
    assert!(all > 55, "{all} deliveries");
    let shown = "return document.querySelectorAll('details.delivery').length";
    eventually_async("a page of 50", Duration::from_secs(10), || async { browser.run(shown).await == json!(50) }).await;
    browser.click("Show more").await;
    let more = || async { browser.run(shown).await.as_u64().is_some_and(|n| n > 50 && n <= 100) };
    eventually_async("the next page", Duration::from_secs(10), more).await;
    let ids = "const ids = [...document.querySelectorAll('details.delivery')].map((d) => d.dataset.id);
               return new Set(ids).size === ids.length";
    assert_eq!(browser.run(ids).await, json!(true), "pages joined without a delivery twice");
    browser.client.clone().close().await.unwrap();
}

/// A tenant's portal link: only its webhooks, none of the operator's screens, no button that changes anything on
/// a read-only link, and an expired link sends back to signing in; the operator issues links from the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_s_portal_link_shows_its_own_webhooks_read_only_until_it_expires() {
    let Some(browser) = Browser::start("portal-tenant").await else { return };
    let dispatcher = Dispatcher::start("portal-tenant", &[], &[("DISPATCHER_API_KEY", KEY)]);
    let portal = dispatcher.api.replace("/api/v1", "/portal/");
    for (tenant, service) in [("acme", "aServiceId12345"), ("globex", "aServiceId67890")] {
        let body = json!({"id": tenant, "name": tenant, "grants": {"serviceId": [service]}});
        assert_eq!(dispatcher.call("POST", "/tenants", Some(body)).await.0, 201);
        let webhook = json!({"url": format!("https://{tenant}.example/hook"), "subscriptions": ["service:subscribed"],
            "attributes": {"serviceId": service}, "description": format!("{tenant} CRM"), "tenant": tenant});
        dispatcher.register(webhook).await;
    }
    let link = |body: serde_json::Value| async {
        let (status, made) = dispatcher.call("POST", "/tenants/acme/portal-links", Some(body)).await;
        assert_eq!(status, 201, "{made}");
        made["url"].as_str().unwrap().to_owned()
    };

    // Read-only: acme's webhook alone, no operator screen, no button that changes anything.
    let read_only = link(json!({"readOnly": true})).await;
    assert!(read_only.starts_with(&format!("{portal}#token=dtk_")), "{read_only}");
    browser.client.goto(&read_only).await.unwrap();
    browser.wait_text("main", "acme CRM", 10).await;
    browser.wait_text("#about", "signed in as acme (read-only)", 5).await;
    let page = browser.run("return document.querySelector('main').innerText").await;
    assert!(!page.as_str().unwrap().contains("globex"), "another tenant's webhook: {page}");
    let visible = |text: &str| {
        format!("return [...document.querySelectorAll('nav a, main a, main button')].some((e) => e.offsetParent !== null && e.textContent.trim() === '{text}')")
    };
    for hidden in ["Rejected events", "Tenants", "Sources", "Register a webhook"] {
        assert_eq!(browser.run(&visible(hidden)).await, json!(false), "{hidden} is offered");
    }
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains("dtk_"), "the token left the address bar: {url}");
    browser.click_text("main a", "acme CRM").await;
    browser.wait_text("main h1", "acme CRM", 10).await;
    for hidden in ["Edit", "Disable", "Send a ping", "Rotate secret", "Delete"] {
        assert_eq!(browser.run(&visible(hidden)).await, json!(false), "{hidden} is offered on a read-only link");
    }
    assert_eq!(browser.run(&visible("Reveal secret")).await, json!(true), "reading the secret is allowed");
    browser.screenshot("tenant-read-only").await;
    browser.assert_accessible("tenant-read-only").await;

    // A link that may change things offers registering; an expired one sends back to signing in.
    browser.client.goto(&link(json!({"readOnly": false})).await).await.unwrap();
    browser.wait_text("main a", "Register a webhook", 10).await;
    let short = link(json!({"expiresIn": "1s"})).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    browser.client.goto(&short).await.unwrap();
    browser.wait_text("#alert", "the bearer token has expired", 10).await;
    browser.wait_text("main h1", "Sign in", 1).await;

    // The operator's view of tenants: a portal link issued from the page, with its copy button.
    browser.client.goto(&format!("{portal}#key={KEY}")).await.unwrap();
    browser.click("Tenants").await;
    browser.click_text("main a", "globex").await;
    browser.wait_text("main h1", "globex", 10).await;
    browser.click("Issue a portal link").await;
    let shown = browser.element(".once input").await;
    let value = shown.prop("value").await.unwrap().unwrap_or_default();
    assert!(value.starts_with(&format!("{portal}#token=dtk_")), "{value}");
    browser.wait_text("main table", "portal link", 10).await;
    browser.screenshot("tenant-operator").await;
    browser.assert_accessible("tenant-operator").await;

    // The operator's sources: one created from the form, its endpoint to give the provider, its secret gone.
    browser.click("Sources").await;
    browser.wait_text("main h1", "Sources", 10).await;
    browser.fill("Id", "stripe-live").await;
    browser.fill("Signing secrets", "whsec_portal_s3cret").await;
    browser.click("Create").await;
    browser.wait_text("main h1", "stripe-live", 10).await;
    browser.wait_text("#notice", "Source stripe-live created.", 5).await;
    let endpoint = browser.element(".once input").await.prop("value").await.unwrap().unwrap_or_default();
    assert!(endpoint.ends_with("/api/v1/in/stripe-live"), "{endpoint}");
    browser.wait_text("main dl", "1 held", 5).await;
    let page = browser.run("return document.documentElement.outerHTML").await;
    assert!(!page.as_str().unwrap().contains("s3cret"), "the secret is not shown again");
    browser.click("Disable").await;
    browser.wait_text("main", "Enable", 10).await;
    let (_, stored) = dispatcher.call("GET", "/sources/stripe-live", None).await;
    assert_eq!(
        (stored["disabled"].as_bool(), stored["verify"]["secretCount"].as_u64()),
        (Some(true), Some(1)),
        "{stored}"
    );
    browser.screenshot("sources-operator").await;
    browser.assert_accessible("sources-operator").await;
    browser.client.clone().close().await.unwrap();
}
