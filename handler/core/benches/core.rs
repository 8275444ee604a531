//! Speed of the pure core (targets: ≥ 1 M events/s for the original mix, ≥ 2 M deliveries/s for a fan-out to
//! 1,000 webhooks, ≥ 200 k deliveries/s for the same fan-out with a transform on every webhook, ≥ 200 k events/s
//! routing among 1,000 webhooks, on one core; hostile transforms fail within 50 ms). The catalog is the built-in
//! file, loaded as any catalog file is.
//! Run: `cargo bench -p dispatcher-core --bench core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dispatcher_core::dispatch::{dispatch, Source};
use dispatcher_core::events::decode;
use dispatcher_core::model::{Secret, Webhook, WebhookConfig};
use dispatcher_core::template::{CountingAllocator, Transform};
use dispatcher_core::webhooks::WebhookIndex;
use serde_json::{json, Value};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn webhook(id: String, config: Value) -> Webhook {
    Webhook::new(id.into(), WebhookConfig::decode(&config).unwrap(), Secret::from_key(&[0; 32]), 0)
}

fn source() -> Source {
    Source { id: "message-id".to_owned(), correlation_id: None, traceparent: None }
}

fn original_webhooks() -> WebhookIndex {
    WebhookIndex::new(vec![
        webhook("wh1".into(), json!({"url": "http://a/wh1", "subscriptions": ["ping"], "attributes": {"name": "wh1"}})),
        webhook(
            "wh2".into(),
            json!({"url": "http://a/wh2", "subscriptions": ["ping", "service:subscribed"], "attributes": {"name": "wh2", "serviceId": "aServiceId12345"}}),
        ),
        webhook(
            "wh3".into(),
            json!({"url": "http://a/wh3", "subscriptions": ["service:subscribed"], "attributes": {"serviceId": "aServiceId09876"}}),
        ),
    ])
}

/// 1,000 webhooks, each for its own service, all subscribed to service:subscribed; each with a content filter
/// that the fan-out's event passes, when `filtered`.
fn thousand_services(filtered: bool) -> WebhookIndex {
    thousand(filtered, None)
}

/// A typical reshape: a new shape, a field renamed, an attribute and the event id added.
const TRANSFORM: &str =
    "#{ type: body.name, customer: #{ fiscalCode: body.payload.fiscalCode }, service: attributes.serviceId, id: eventId }";

fn thousand(filtered: bool, transform: Option<&str>) -> WebhookIndex {
    WebhookIndex::new(
        (0..1000)
            .map(|i| {
                let mut config = json!({"url": format!("https://svc{i}.example/hook"), "subscriptions": ["service:subscribed"], "attributes": {"serviceId": format!("service-{i:04}")}});
                if filtered {
                    config["filter"] = json!({"payload": {"fiscalCode": [{"prefix": "AAA"}, {"suffix": format!("{i:04}")}]}});
                }
                if let Some(transform) = transform {
                    config["transform"] = Value::from(transform);
                }
                webhook(format!("webhook-{i:04}"), config)
            })
            .collect(),
    )
}

const FC: &str = "AAABBB00A00A000B";

fn original_mix(c: &mut Criterion) {
    let (webhooks, source) = (original_webhooks(), source());
    let inputs: Vec<Vec<u8>> = [
        json!({"name": "ping", "payload": {"name": "wh1"}}),
        json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": "aServiceId12345"}}),
        json!({"name": "ping:all"}),
        json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}}),
        json!({"name": "profile:service-preferences-changed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "MANUAL", "oldServicePreferencesMode": "AUTO"}}),
    ]
    .iter()
    .map(|v| v.to_string().into_bytes())
    .collect();
    let mut group = c.benchmark_group("original mix, 3 webhooks");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function("decode + dispatch (5 events)", |b| {
        b.iter(|| {
            for input in &inputs {
                let event = decode(black_box(input)).unwrap();
                black_box(dispatch(&source, &event, &webhooks));
            }
        })
    });
    let events: Vec<_> = inputs.iter().map(|i| decode(i).unwrap()).collect();
    group.bench_function("dispatch only (5 events)", |b| {
        b.iter(|| {
            for event in &events {
                black_box(dispatch(&source, black_box(event), &webhooks));
            }
        })
    });
    group.finish();
}

/// The same fan-out with and without a content filter on every webhook: the filtered one is to stay within 2x.
fn fan_out(c: &mut Criterion) {
    let source = source();
    let input = json!({"name": "profile:completed", "payload": {"fiscalCode": FC, "servicePreferencesMode": "AUTO"}})
        .to_string();
    let mut group = c.benchmark_group("profile:completed AUTO to 1,000 webhooks");
    group.throughput(Throughput::Elements(1000));
    for (name, webhooks) in [
        ("decode + dispatch (1,000 deliveries)", thousand_services(false)),
        ("decode + dispatch, every webhook filtered (1,000 deliveries)", thousand_services(true)),
        ("decode + dispatch, every webhook transformed (1,000 deliveries)", thousand(false, Some(TRANSFORM))),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let event = decode(black_box(input.as_bytes())).unwrap();
                let deliveries = dispatch(&source, &event, &webhooks);
                assert_eq!(deliveries.len(), 1000);
                deliveries
            })
        });
    }
    group.finish();
}

fn routing(c: &mut Criterion) {
    let (webhooks, source) = (thousand_services(false), source());
    let inputs: Vec<String> = (0..1000)
        .step_by(7)
        .map(|i| {
            json!({"name": "service:subscribed", "payload": {"fiscalCode": FC, "serviceId": format!("service-{i:04}")}})
                .to_string()
        })
        .collect();
    let mut group = c.benchmark_group("service:subscribed among 1,000 webhooks");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function(format!("decode + dispatch ({} events)", inputs.len()), |b| {
        b.iter(|| {
            for input in &inputs {
                let event = decode(black_box(input.as_bytes())).unwrap();
                let deliveries = dispatch(&source, &event, &webhooks);
                assert_eq!(deliveries.len(), 1);
            }
        })
    });
    group.finish();
}

/// How long a hostile transform takes to fail (the bound is 50 ms): each stops on a step or size limit.
fn hostile_transforms(c: &mut Criterion) {
    let body = json!({"name": "service:subscribed", "payload": {"fiscalCode": FC}});
    let mut group = c.benchmark_group("hostile transform, until it fails");
    group.sample_size(10);
    for (name, source) in [
        ("endless loop", "loop { }"),
        ("unbounded recursion", "fn f(x) { f(x + 1) } f(0)"),
        ("string doubling to 100 MB", "let s = \"a\"; loop { s += s; }"),
        ("array doubling", "let a = [1]; loop { a += a; }"),
        (
            "250 kB strings set into a map",
            "let s = \"x\"; s.pad(250_000, \"y\"); let m = #{}; for i in 0..100_000 { m.set(`k${i}`, s + i); } m",
        ),
        (
            "a long string searched again and again",
            "let s = \"a\"; for i in 0..17 { s += s; } loop { s.index_of(\"z\"); }",
        ),
    ] {
        let transform = Transform::compile(source).unwrap();
        let error = transform.apply(&body, &json!({}), "evt", None).unwrap_err().to_string();
        println!("{name}: {error}");
        group.bench_function(name, |b| {
            b.iter(|| assert!(transform.apply(black_box(&body), &json!({}), "evt", None).is_err()))
        });
    }
    group.finish();
}

criterion_group!(benches, original_mix, fan_out, routing, hostile_transforms);
criterion_main!(benches);
