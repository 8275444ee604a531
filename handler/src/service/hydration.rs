//! Hydration: before an event is routed, the enrichers its mapping rules name (`hydrate`) fetch what the rules
//! and the webhooks' transforms read (`enrichment.<name>`): once per event, whatever the number of webhooks,
//! through the sender deliveries use (the SSRF guard, OAuth 2.0 tokens, mTLS), each within its timeout, an
//! answer used again while its cache time lasts. What it cannot fetch is a failure of the event, tried again on
//! the retry schedule and then rejected with its reason: an event never goes out without its data.

use super::Service;
use dispatcher_core::dispatch::Source;
use dispatcher_core::events::{catalog, Enricher, Enrichment, Event};
use dispatcher_core::policy::outcome::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The most answers kept: past that, the cache is emptied (answers are small, and cheap to fetch again).
const MAX_ANSWERS: usize = 10_000;

/// Enrichers' answers by request, each with when it goes stale (ms since the Unix epoch).
#[derive(Default)]
pub(super) struct Answers(Mutex<HashMap<String, (Value, i64)>>);

impl Answers {
    fn get(&self, key: &str, now_ms: i64) -> Option<Value> {
        let answers = self.0.lock().ok()?;
        answers.get(key).filter(|(_, stale_at)| *stale_at > now_ms).map(|(value, _)| value.clone())
    }

    fn put(&self, key: String, value: Value, stale_at: i64) {
        if let Ok(mut answers) = self.0.lock() {
            if answers.len() >= MAX_ANSWERS {
                answers.clear();
            }
            answers.insert(key, (value, stale_at));
        }
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

    async fn fetch(&self, enricher: &Enricher, event: &Event, source: &Source) -> Result<Value, Unhydrated> {
        let call = enricher.call(event).map_err(|reason| Unhydrated { reason, permanent: true })?;
        let key = call.cache_key(&enricher.name);
        let now_ms = self.clock.now_ms();
        if let Some(answer) = self.answers.get(&key, now_ms) {
            self.metrics.enrichment(&enricher.name, "cached");
            return Ok(answer);
        }
        let request = dispatcher_core::request::enrichment(enricher, &call, source.correlation_id.as_deref(), now_ms);
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
            self.answers.put(key, answer.clone(), now_ms + enricher.cache.as_millis() as i64);
        }
        Ok(answer)
    }
}
