//! Validated events: what decoding an incoming message yields and what the mapping table produces.

use super::spec::EventSpec;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// An event's payload. A catalog event's holds only the fields the catalog documents, in the order the producer
/// sent them (or the mapping table built them): internal fields never reach an integrator. A received event's
/// is the provider's JSON body, parsed (its values, not its bytes: `1.50` is sent on as `1.5`).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Fields(Vec<(&'static str, Value)>),
    Received(Value),
}

impl Default for Payload {
    fn default() -> Self {
        Payload::Fields(Vec::new())
    }
}

impl Payload {
    pub fn new(fields: Vec<(&'static str, Value)>) -> Self {
        Payload::Fields(fields)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Payload::Fields(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            Payload::Received(value) => value.get(key),
        }
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The fields of a catalog event's payload, in order (none for a received event's).
    pub fn fields(&self) -> &[(&'static str, Value)] {
        match self {
            Payload::Fields(fields) => fields,
            Payload::Received(_) => &[],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Payload::Fields(fields) => fields.len(),
            Payload::Received(value) => value.as_object().map_or(0, serde_json::Map::len),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = match self {
            Payload::Fields(fields) => fields,
            Payload::Received(value) => return value.serialize(serializer),
        };
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (key, value) in fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// What an event is: an event of the catalog, or one a source received that the catalog does not declare
/// (`<sourceId>:<provider event type>`), delivered as the provider sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Catalog(&'static EventSpec),
    Received(Arc<str>),
}

/// What the enrichers of an event fetched, by enricher name: the `enrichment` a rule's payload and the
/// webhooks' transforms read. Never sent unless a template puts it in a body.
pub type Enrichment = std::collections::BTreeMap<String, Value>;

/// An event that passed validation: a catalog event and its payload, and what its enrichers fetched for it
/// (shared by the public events a rule makes of it, for their webhooks' transforms).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub payload: Payload,
    pub enrichment: Option<Arc<Enrichment>>,
    /// What its delivery ids derive from instead of the body, when the body holds what enrichers fetched: an
    /// answer may differ when the event is routed again (a redelivery, a retry), its ids must not
    /// (`Mapping::emit`).
    pub identity: Option<Arc<str>>,
}

impl Event {
    pub fn new(spec: &'static EventSpec, payload: Payload) -> Event {
        Event { kind: Kind::Catalog(spec), payload, enrichment: None, identity: None }
    }

    /// An event source `source` received, of a name the catalog does not declare, with the provider's body.
    pub fn received(name: &str, body: Value) -> Event {
        Event {
            kind: Kind::Received(Arc::from(name)),
            payload: Payload::Received(body),
            enrichment: None,
            identity: None,
        }
    }

    pub fn name(&self) -> &str {
        match &self.kind {
            Kind::Catalog(spec) => spec.name.as_str(),
            Kind::Received(name) => name,
        }
    }

    /// Its catalog entry; `None` for a received event the catalog does not declare.
    pub fn spec(&self) -> Option<&'static EventSpec> {
        match self.kind {
            Kind::Catalog(spec) => Some(spec),
            Kind::Received(_) => None,
        }
    }

    /// Whether it is delivered as itself: a public catalog event, or a received one.
    pub fn is_public(&self) -> bool {
        self.spec().is_none_or(EventSpec::is_public)
    }

    /// The webhook attributes a webhook must have to receive it (none for a received event).
    pub fn required_attributes(&self) -> &'static [String] {
        self.spec().map_or(&[], EventSpec::required_attributes)
    }
}

/// The event as JSON, `{"name": ..., "payload": {...}}`: what a mapping rule's `when` pattern is matched against.
pub fn body(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_default()
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("name", self.name())?;
        map.serialize_entry("payload", &self.payload)?;
        map.end()
    }
}
