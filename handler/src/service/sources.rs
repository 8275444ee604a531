//! Inbound webhooks: the sources providers post to (`/api/v1/sources`, the operator's), and what a provider's
//! request becomes (`receive`): verified over its exact bytes, recognised when it is a repeat, and published as
//! a received event (`inbound::received`), answered only once that event is durably held: locally routed with
//! its deliveries stored, or stored to wait for its enrichers; on Azure on the events queue (`Publisher`).

use super::access::require_operator;
use super::intake::Publisher;
use super::{Invalid, Published, Service, ServiceError};
use crate::ports::{SourceStore, StoreError};
use dispatcher_core::inbound::{decode_source, received, verify, Refused, Source, SourceRecord, DEDUPLICATION_WINDOW};
use dispatcher_core::model::{Access, Problem, Report};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What became of a provider's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Published as the event of this id.
    Published { id: String, event: String },
    /// A repeat of one published within the de-duplication window: not published again.
    Repeat { id: String, event: String },
}

/// Why a provider's request is not taken.
#[derive(Debug, thiserror::Error)]
pub enum Unreceived {
    /// No such source, or a disabled one: the caller learns nothing more.
    #[error("no such source")]
    NoSource,
    /// The signature, the credential or the timestamp did not verify: said in the log and the metrics only.
    #[error("{0}")]
    Refused(Refused),
    /// Verified, but its body is not JSON.
    #[error("{0}")]
    NotJson(Report),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for Unreceived {
    fn from(error: StoreError) -> Self {
        Unreceived::Service(error.into())
    }
}

/// The sources by id, as read at once.
type Sources = Arc<HashMap<String, Arc<Source>>>;

/// How often at most the sources are read for requests: on Azure for one to a source the copy does not hold
/// (another instance may have made it since), and, whatever the runtime, again after a read that failed.
const MISS_AGE: Duration = Duration::from_secs(1);

/// The sources as the inbound endpoint reads them, kept like the webhooks (`cache.rs`): read again after this
/// process changes one, and, when other processes do too (Azure), once the copy is older than its maximum age.
pub struct SourceCache {
    store: Arc<dyn SourceStore>,
    max_age: Option<Duration>,
    current: RwLock<Option<(Instant, Sources)>>,
    /// Held while the sources are read; when they last were tried, read or not.
    reading: tokio::sync::Mutex<Option<Instant>>,
}

impl SourceCache {
    pub fn new(store: Arc<dyn SourceStore>, max_age: Option<Duration>) -> SourceCache {
        SourceCache { store, max_age, current: RwLock::default(), reading: tokio::sync::Mutex::new(None) }
    }

    fn fresh(&self) -> Option<Sources> {
        let current = self.current.read().ok()?;
        let (read_at, sources) = current.as_ref()?;
        self.max_age.is_none_or(|max| read_at.elapsed() < max).then(|| sources.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<Arc<Source>>, StoreError> {
        if let Some(sources) = self.fresh() {
            if let Some(source) = sources.get(id) {
                return Ok(Some(source.clone()));
            }
        }
        let mut tried = self.reading.lock().await;
        let current = self.current();
        let stale = current.as_ref().is_none_or(|(at, _)| self.max_age.is_some_and(|max| at.elapsed() >= max));
        // Unknown here, it may be another instance's new source (Azure): looked for again, at most once a
        // MISS_AGE however many requests name unknown ids, and whether or not the store answers.
        let missing = current.as_ref().is_some_and(|(_, sources)| !sources.contains_key(id));
        let look_again = missing && self.max_age.is_some();
        // Tried a moment ago, read or not (the store may be failing slowly): the requests waiting meanwhile are
        // answered from the copy held, however old, rather than each trying in turn.
        let recent = tried.is_some_and(|at| at.elapsed() < MISS_AGE);
        match (current, (stale || look_again) && !recent) {
            (Some((_, sources)), false) => Ok(sources.get(id).cloned()),
            (None, false) => Err(StoreError::Storage("the sources could not be read a moment ago".to_owned())),
            (_, true) => {
                *tried = Some(Instant::now());
                Ok(self.read().await?.get(id).cloned())
            }
        }
    }

    fn current(&self) -> Option<(Instant, Sources)> {
        self.current.read().ok()?.clone()
    }

    async fn read(&self) -> Result<Sources, StoreError> {
        let mut sources = HashMap::new();
        for record in self.store.list_sources().await? {
            match record.source() {
                Ok(source) => drop(sources.insert(record.id.clone(), Arc::new(source))),
                // Stored after the same checks: only a file edited by hand gets here.
                Err(report) => {
                    tracing::error!(source = %record.id, %report, "a stored source is invalid: it receives nothing")
                }
            }
        }
        let sources = Arc::new(sources);
        if let Ok(mut current) = self.current.write() {
            *current = Some((Instant::now(), sources.clone()));
        }
        Ok(sources)
    }

    /// Reads the sources again after this process changed one, under the lock a read under way holds: a read
    /// that began before the change cannot leave its copy behind. A failed read forgets the copy.
    async fn changed(&self) {
        let mut tried = self.reading.lock().await;
        *tried = Some(Instant::now());
        if let Err(error) = self.read().await {
            tracing::warn!(%error, "the sources could not be read again after a change: they are read at next use");
            if let Ok(mut current) = self.current.write() {
                *current = None;
            }
        }
    }
}

impl Service {
    /// Registers a source; conflict when its id is taken.
    pub async fn create_source(&self, access: &Access, body: &Value) -> Result<SourceRecord, ServiceError> {
        require_operator(access, "managing sources")?;
        let source = decode_source(body).map_err(|report| ServiceError::Invalid { what: Invalid::Source, report })?;
        let now = self.clock.now_ms();
        let record = SourceRecord { id: source.id, config: body.clone(), created_at_ms: now, updated_at_ms: now };
        self.sources_store.put_source(&record, None).await?;
        self.sources.changed().await;
        tracing::info!(target: "audit", who = "operator", action = "source.create", id = %record.id, "changed");
        Ok(record)
    }

    /// Replaces a source's configuration. Its secrets may be left out to keep the stored ones (GET never shows
    /// them), when its verification type stays the same.
    pub async fn replace_source(&self, access: &Access, id: &str, body: &Value) -> Result<SourceRecord, ServiceError> {
        require_operator(access, "managing sources")?;
        let Some((stored, version)) = self.sources_store.get_source(id).await? else {
            return Err(ServiceError::NotFound { what: "source", id: id.to_owned() });
        };
        let mut config = body.clone();
        if let Value::Object(fields) = &mut config {
            if fields.contains_key("id") {
                let report = Report::single("id", "is the path's: leave it out (it names the endpoint and the events)");
                return Err(ServiceError::Invalid { what: Invalid::Source, report });
            }
            fields.insert("id".to_owned(), Value::from(id));
            keep_secrets(fields, &stored.config)?;
        }
        let source =
            decode_source(&config).map_err(|report| ServiceError::Invalid { what: Invalid::Source, report })?;
        let record = SourceRecord { id: source.id, config, updated_at_ms: self.clock.now_ms(), ..stored };
        self.sources_store.put_source(&record, Some(&version)).await?;
        self.sources.changed().await;
        tracing::info!(target: "audit", who = "operator", action = "source.replace", id = %record.id, "changed");
        Ok(record)
    }

    pub async fn source(&self, access: &Access, id: &str) -> Result<SourceRecord, ServiceError> {
        require_operator(access, "managing sources")?;
        match self.sources_store.get_source(id).await? {
            Some((record, _)) => Ok(record),
            None => Err(ServiceError::NotFound { what: "source", id: id.to_owned() }),
        }
    }

    pub async fn list_sources(&self, access: &Access) -> Result<Vec<SourceRecord>, ServiceError> {
        require_operator(access, "managing sources")?;
        Ok(self.sources_store.list_sources().await?)
    }

    pub async fn delete_source(&self, access: &Access, id: &str) -> Result<(), ServiceError> {
        require_operator(access, "managing sources")?;
        if !self.sources_store.delete_source(id).await? {
            return Err(ServiceError::NotFound { what: "source", id: id.to_owned() });
        }
        self.sources.changed().await;
        tracing::info!(target: "audit", who = "operator", action = "source.delete", %id, "changed");
        Ok(())
    }

    /// Takes a provider's request to source `id`: its headers by lower-case name and its exact body. Published
    /// once per provider event within the de-duplication window, under an id made from the source and the
    /// provider's event id (or, when the signature does not cover that id, the body), so that even two repeats
    /// racing each other make the same deliveries, delivered once.
    pub async fn receive(
        &self,
        id: &str,
        header: &(dyn Fn(&str) -> Option<String> + Sync),
        body: &[u8],
        traceparent: Option<String>,
    ) -> Result<Received, Unreceived> {
        let source = match self.sources.get(id).await? {
            Some(source) if !source.disabled => source,
            _ => {
                // Not the id asked for: any caller could make label values of their own.
                self.metrics.inbound("unknown", "unknown-source");
                return Err(Unreceived::NoSource);
            }
        };
        let now_ms = self.clock.now_ms();
        let verified = verify(&source.verify, source.tolerance.as_secs() as i64, header, body, now_ms / 1000);
        let verified = verified.map_err(|refused| {
            tracing::warn!(source = %source.id, reason = %refused, "inbound request refused");
            self.metrics.inbound(&source.id, refused.code());
            Unreceived::Refused(refused)
        })?;
        if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            self.metrics.inbound(&source.id, "not-json");
            return Err(Unreceived::NotJson(Report::single("body", format!("is not valid JSON: {error}"))));
        }
        let key = received::repeat_key(verified.event_id.as_deref(), verified.id_signed, body);
        let event_id = received::event_id(&source.id, &key);
        let event = source.event_name(&verified.event_type);
        let since_ms = now_ms - DEDUPLICATION_WINDOW.as_millis() as i64;
        if self.sources_store.received(&source.id, &key, since_ms).await? {
            tracing::info!(source = %source.id, %event, event_id, "a repeat of a received event: not published again");
            self.metrics.inbound(&source.id, "repeat");
            return Ok(Received::Repeat { id: event_id, event });
        }
        let message = received::message(&source.id, &verified.event_type, body);
        let Published { id, .. } = self
            .publish_traced(&message, Some(event_id), header("x-correlation-id"), traceparent, Publisher::Provider)
            .await?;
        // After the publish: a receipt lost to a crash here only lets a repeat be published again, under the
        // same id, which makes the same deliveries.
        if let Err(error) = self.sources_store.record_receipt(&source.id, &key, now_ms).await {
            // The event is queued: a repeat published again makes the same deliveries.
            tracing::warn!(source = %source.id, event_id = %id, %error, "the receipt could not be written");
        }
        self.metrics.inbound(&source.id, "published");
        Ok(Received::Published { id, event })
    }
}

/// A replacement's `verify` without `secrets` keeps the stored ones, when it is of the same type; of another
/// type, it needs its own (422: the body is valid, what is stored is what it does not fit).
fn keep_secrets(fields: &mut serde_json::Map<String, Value>, stored: &Value) -> Result<(), ServiceError> {
    let Some(Value::Object(verify)) = fields.get_mut("verify") else { return Ok(()) };
    if verify.contains_key("secrets") {
        return Ok(());
    }
    let stored_verify = stored.get("verify");
    let stored_type = stored_verify.and_then(|v| v.get("type")).cloned().unwrap_or_default();
    match stored_verify.and_then(|v| v.get("secrets")) {
        Some(secrets) if verify.get("type") == Some(&stored_type) => {
            verify.insert("secrets".to_owned(), secrets.clone());
            Ok(())
        }
        _ => Err(ServiceError::Invalid {
            what: Invalid::Source,
            report: Report::of(vec![Problem::unprocessable(
                "verify.secrets",
                format!("is needed: the stored source verifies by {stored_type}, whose secrets do not carry over"),
            )])
            .unwrap_or_else(|| Report::single("verify.secrets", "is needed")),
        }),
    }
}
