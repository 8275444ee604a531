//! Speed of the SQLite store used as the local delivery queue, alone (no HTTP): how many deliveries per
//! second it can accept (durably, from concurrent publishers that share group commits), and how many it can
//! lease and complete. Run: `cargo bench -p handler --bench queue`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dispatcher::adapters::sqlite::SqliteStore;
use dispatcher::ports::DeliveryLog;
use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::model::{Attempt, Delivery, Next};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"name":"ping","payload":{}}"#;
const PUBLISHERS: u64 = 32;
const LEASE: usize = 64;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn deliveries(webhooks: usize) -> Vec<Delivery> {
    let source = Source {
        id: format!("msg-{}", SEQUENCE.fetch_add(1, Ordering::Relaxed)),
        correlation_id: None,
        traceparent: None,
    };
    (0..webhooks).map(|w| direct(&source, &format!("wh-{w}").into(), "ping", BODY.to_owned())).collect()
}

fn success() -> Attempt {
    Attempt { at_ms: 0, duration_ms: 1, status_code: Some(204), ..Attempt::default() }
}

fn queue(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("queue-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SqliteStore::open(&dir, 0).unwrap());
    let mut group = c.benchmark_group("sqlite_queue");
    group.measurement_time(Duration::from_secs(5));

    for fan_out in [1, 10] {
        group.throughput(Throughput::Elements(PUBLISHERS * fan_out as u64));
        group.bench_function(format!("accept/{PUBLISHERS} publishers x {fan_out} deliveries"), |b| {
            b.to_async(&runtime).iter(|| async {
                let accepts = (0..PUBLISHERS).map(|_| {
                    let store = store.clone();
                    tokio::spawn(async move { store.log_deliveries(&deliveries(fan_out), 0).await.unwrap() })
                });
                for accept in accepts.collect::<Vec<_>>() {
                    accept.await.unwrap();
                }
            })
        });
    }

    // Everything accepted above is due; lease and complete it (and more, accepted untimed) in rounds.
    group.throughput(Throughput::Elements(LEASE as u64));
    group.bench_function(format!("lease {LEASE} and complete each"), |b| {
        b.to_async(&runtime).iter_custom(|rounds| {
            let store = store.clone();
            async move {
                for _ in 0..rounds {
                    store.log_deliveries(&deliveries(LEASE), 0).await.unwrap();
                }
                let start = Instant::now();
                for _ in 0..rounds {
                    let jobs = store.lease(1, LEASE, 60_000, Vec::new(), &[]).await.unwrap();
                    let completions = jobs.into_iter().map(|job| {
                        let store = store.clone();
                        tokio::spawn(async move { store.log_attempt(&job, success(), Next::Succeeded).await.unwrap() })
                    });
                    for completion in completions.collect::<Vec<_>>() {
                        completion.await.unwrap();
                    }
                }
                start.elapsed()
            }
        })
    });
    group.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, queue);
criterion_main!(benches);
