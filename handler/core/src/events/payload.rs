//! Validated events: what decoding an incoming message yields and what the mapping table produces.

use super::spec::EventSpec;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// The fields of an event's payload, in the order the producer sent them (or the mapping table built them).
/// Holds only fields the catalog documents: internal fields never reach an integrator.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload(Vec<(&'static str, Value)>);

impl Payload {
    pub fn new(fields: Vec<(&'static str, Value)>) -> Self {
        Payload(fields)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// What the enrichers of an event fetched, by enricher name: the `enrichment` a rule's payload and the
/// webhooks' transforms read. Never sent unless a template puts it in a body.
pub type Enrichment = std::collections::BTreeMap<String, Value>;

/// An event that passed validation: a catalog event and its payload, and what its enrichers fetched for it
/// (shared by the public events a rule makes of it, for their webhooks' transforms).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub spec: &'static EventSpec,
    pub payload: Payload,
    pub enrichment: Option<Arc<Enrichment>>,
    /// What its delivery ids derive from instead of the body, when the body holds what enrichers fetched: an
    /// answer may differ when the event is routed again (a redelivery, a retry), its ids must not
    /// (`Mapping::emit`).
    pub identity: Option<Arc<str>>,
}

impl Event {
    pub fn new(spec: &'static EventSpec, payload: Payload) -> Event {
        Event { spec, payload, enrichment: None, identity: None }
    }

    pub fn name(&self) -> &'static str {
        self.spec.name.as_str()
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
