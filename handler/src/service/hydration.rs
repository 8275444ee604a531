//! Hydration: before an event is routed, the enrichers its mapping rules name (`hydrate`) fetch what the rules
//! and the webhooks' transforms read (`enrichment.<name>`): once per event, whatever the number of webhooks,
//! through the sender deliveries use (the SSRF guard, OAuth 2.0 tokens, mTLS), each within its timeout, an
//! answer used again while its cache time lasts. What it cannot fetch is a failure of the event, tried again on
//! the retry schedule and then rejected with its reason: an event never goes out without its data.

use super::{off_workers, Service};
use dispatcher_core::dispatch::Source;
use dispatcher_core::events::{catalog, Enricher, Enrichment, Event};
use dispatcher_core::policy::outcome::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most the cached answers may weigh (their JSON text, and their keys): past that, the stale ones go, then
/// all (answers are cheap to fetch again; memory on a small instance is not).
const MAX_CACHED_BYTES: usize = 32 << 20;

/// Enrichers' answers by request, each with when it goes stale (ms since the Unix epoch) and its weight.
#[derive(Default)]
pub(super) struct Answers(Mutex<Cached>);

#[derive(Default)]
struct Cached {
    answers: HashMap<String, (Value, i64, usize)>,
    bytes: usize,
}

impl Answers {
    fn get(&self, key: &str, now_ms: i64) -> Option<Value> {
        let cached = self.0.lock().ok()?;
        cached.answers.get(key).filter(|(_, stale_at, _)| *stale_at > now_ms).map(|(value, ..)| value.clone())
    }

    fn put(&self, key: String, value: Value, weight: usize, now_ms: i64, stale_at: i64) {
        let Ok(mut cached) = self.0.lock() else { return };
        let weight = weight + key.len();
        if cached.bytes + weight > MAX_CACHED_BYTES {
            cached.answers.retain(|_, (_, stale_at, _)| *stale_at > now_ms);
            cached.bytes = cached.answers.values().map(|(.., weight)| weight).sum();
        }
        if cached.bytes + weight > MAX_CACHED_BYTES {
            cached.answers.clear();
            cached.bytes = 0;
        }
        if let Some((.., replaced)) = cached.answers.insert(key, (value, stale_at, weight)) {
            cached.bytes -= replaced;
        }
        cached.bytes += weight;
    }
}

/// Why an event could not be hydrated, and whether trying again can help: a body template that fails, or a
/// request the sender refuses (an invalid URL, a target the SSRF guard refuses), would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unhydrated {
    pub reason: String,
    pub permanent: bool,
}

impl Unhydrated {
    fn transient(reason: String) -> Unhydrated {
        Unhydrated { reason, permanent: false }
    }
}

impl Service {
    /// `event` with what its enrichers fetched; why not (naming the enricher) when one could not.
    pub(super) async fn hydrate(&self, event: Event, source: &Source) -> Result<Event, Unhydrated> {
        let catalog = catalog::current();
        let enrichers = catalog.enrichers_for(&event);
        if enrichers.is_empty() {
            return Ok(event);
        }
        let mut enrichment = Enrichment::new();
        for enricher in enrichers {
            let answer = self.fetch(enricher, &event, source).await.map_err(|failed| Unhydrated {
                reason: format!("enricher {}: {}", enricher.name, failed.reason),
                ..failed
            })?;
            enrichment.insert(enricher.name.clone(), answer);
        }
        let event = Event { enrichment: Some(Arc::new(enrichment)), ..event };
        catalog.check_enrichment(&event).map_err(Unhydrated::transient)?;
        Ok(event)
    }

    async fn fetch(&self, enricher: &'static Enricher, event: &Event, source: &Source) -> Result<Value, Unhydrated> {
        let call = match enricher.body {
            None => enricher.call(event),
            // A body template may run up to its deadline: off the async workers.
            Some(_) => {
                let event = event.clone();
                off_workers(move || enricher.call(&event)).await.map_err(|e| Unhydrated::transient(e.to_string()))?
            }
        };
        let call = call.map_err(|reason| Unhydrated { reason, permanent: true })?;
        let key = call.cache_key(&enricher.name);
        let now_ms = self.clock.now_ms();
        if let Some(answer) = self.answers.get(&key, now_ms) {
            self.metrics.enrichment(&enricher.name, "cached");
            return Ok(answer);
        }
        let request = enricher.request(&call, source.correlation_id.as_deref(), now_ms);
        let (status, text, permanent) = match tokio::time::timeout(enricher.timeout, self.sender.send(request)).await {
            Ok((response, attempt)) => {
                let permanent = matches!(response, Response::Failed { transient: false, .. });
                (attempt.status_code, attempt.error.unwrap_or(attempt.response), permanent)
            }
            Err(_) => (None, format!("no answer within {:?}", enricher.timeout), false),
        };
        let answer = enricher.answer(status, &text);
        self.metrics.enrichment(&enricher.name, if answer.is_ok() { "fetched" } else { "failed" });
        let answer = answer.map_err(|reason| Unhydrated { reason, permanent })?;
        if !enricher.cache.is_zero() {
            let stale_at = now_ms + enricher.cache.as_millis() as i64;
            self.answers.put(key, answer.clone(), weight(&answer), now_ms, stale_at);
        }
        Ok(answer)
    }
}

/// About how many bytes a parsed answer takes in memory (several times its text: every value is a node).
fn weight(value: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    match value {
        Value::String(text) => NODE + text.len(),
        Value::Array(items) => NODE + items.iter().map(weight).sum::<usize>(),
        Value::Object(fields) => {
            NODE + fields.iter().map(|(key, value)| NODE + key.len() + weight(value)).sum::<usize>()
        }
        _ => NODE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_weighs_its_answers_and_lets_the_stale_go_first() {
        let answers = Answers::default();
        let big = MAX_CACHED_BYTES / 4;
        answers.put("stale".to_owned(), Value::from(1), big, 0, 10);
        answers.put("fresh".to_owned(), Value::from(2), big, 0, 1_000);
        answers.put("other".to_owned(), Value::from(3), big, 0, 1_000);
        assert_eq!(answers.get("stale", 5), Some(Value::from(1)));
        answers.put("more".to_owned(), Value::from(4), big, 20, 1_000);
        assert_eq!((answers.get("stale", 5), answers.get("fresh", 20)), (None, Some(Value::from(2))), "the stale went");
        answers.put("again".to_owned(), Value::from(5), big, 20, 1_000);
        answers.put("over".to_owned(), Value::from(6), big, 20, 1_000);
        let cached = answers.0.lock().unwrap();
        assert!(cached.bytes <= MAX_CACHED_BYTES, "{} bytes", cached.bytes);
        assert_eq!(cached.bytes, cached.answers.values().map(|(.., weight)| weight).sum::<usize>());
    }

    #[test]
    fn an_answer_weighs_what_it_takes_in_memory_not_its_text() {
        let numbers = Value::from((0..1000).collect::<Vec<i64>>());
        assert!(weight(&numbers) > 5 * numbers.to_string().len(), "{} for {} bytes of text", weight(&numbers), 3890);
    }
}
