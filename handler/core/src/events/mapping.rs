//! The mapping table: how non-public events become public ones.
//!
//! Each rule reads like the documentation table generated from it (`schemas/catalog.md`, `docs/events.md`): when
//! event `from` arrives and its body matches the event pattern `when`, emit event `to`, once for each distinct
//! value of a webhook attribute (`forEach`) or once, with a payload built field by field. The emitted events are
//! then routed like any public event. Rules are read from the catalog file and checked there (`events::file`),
//! so running one cannot fail.

use super::enricher::Enrichment;
use super::payload::{Event, Payload};
use super::spec::EventSpec;
use crate::policy::filter::EventFilter;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;

/// One rule of the mapping table.
#[derive(Debug)]
pub struct Mapping {
    pub from: String,
    /// The event pattern the incoming event (`{"name": ..., "payload": {...}}`) must match; none: always.
    pub when: Option<EventFilter>,
    /// `when` read as "each of these string fields holds one of these values", when that is all it says: the
    /// same verdict without writing the event out for the matcher (the common case, at a fifth of the cost).
    pub when_equal: Option<Vec<(String, Vec<String>)>>,
    pub to: String,
    /// Emit once for every distinct non-empty value of this attribute among the enabled webhooks (several
    /// webhooks sharing a value get one event, which routing then delivers to each of them); none: emit once.
    pub for_each: Option<String>,
    /// The payload of the emitted event, field by field, in this order.
    pub payload: Vec<(String, Source)>,
    /// The enrichers whose answers the rule needs (`enrichment.<name>`), fetched before it runs.
    pub hydrate: Vec<String>,
}

/// Where a field of an emitted payload comes from: a path into what the rule reads (`event.payload.<field>`,
/// `event.name`, `attributes.<forEach>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `event.payload.<field>`: that field of the incoming payload.
    Field(String),
    /// `event.name`.
    EventName,
    /// `attributes.<forEach>`: the attribute value the event is emitted for.
    Attribute(String),
    /// `enrichment.<name>[.<key>...]`: what enricher `name` fetched, or a value inside it. Its type is known
    /// only once fetched: checked then (`Catalog::check_enrichment`), before the rule runs.
    Enrichment { name: String, keys: Vec<String> },
}

impl Source {
    /// The path as written in the catalog file.
    pub fn path(&self) -> String {
        match self {
            Source::Field(field) => format!("event.payload.{field}"),
            Source::EventName => "event.name".to_owned(),
            Source::Attribute(attribute) => format!("attributes.{attribute}"),
            Source::Enrichment { name, keys } => {
                std::iter::once(format!("enrichment.{name}")).chain(keys.iter().cloned()).collect::<Vec<_>>().join(".")
            }
        }
    }

    /// The value of an `enrichment.` path in what the enrichers fetched.
    pub fn in_enrichment<'a>(name: &str, keys: &[String], enrichment: &'a Enrichment) -> Option<&'a Value> {
        keys.iter().try_fold(enrichment.get(name)?, |value, key| value.get(key.as_str()))
    }
}

impl Serialize for Mapping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Fields<'a>(&'a [(String, Source)]);
        impl Serialize for Fields<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (field, source) in self.0 {
                    map.serialize_entry(field, &source.path())?;
                }
                map.end()
            }
        }
        let mut rule = serializer.serialize_struct("Mapping", 6)?;
        rule.serialize_field("from", &self.from)?;
        rule.serialize_field("when", &self.when.as_ref().map(EventFilter::pattern))?;
        rule.serialize_field("to", &self.to)?;
        rule.serialize_field("forEach", &self.for_each)?;
        rule.serialize_field("payload", &Fields(&self.payload))?;
        if self.hydrate.is_empty() {
            rule.skip_field("hydrate")?;
        } else {
            rule.serialize_field("hydrate", &self.hydrate)?;
        }
        rule.end()
    }
}

impl Mapping {
    /// Whether this rule applies to `event`: its `when` holds.
    pub fn holds(&self, event: &Event) -> bool {
        if let Some(fields) = &self.when_equal {
            return fields.iter().all(|(field, values)| {
                event.payload.get_str(field).is_some_and(|value| values.iter().any(|v| v == value))
            });
        }
        self.when.as_ref().is_none_or(|when| when.matches(&super::payload::body(event)))
    }

    pub(crate) fn emit(&self, to: &'static EventSpec, event: &Event, attribute_value: &str) -> Event {
        let fields = self
            .payload
            .iter()
            .filter_map(|(field, source)| {
                let value = match source {
                    Source::Field(from) => event.payload.get(from)?.clone(),
                    Source::EventName => Value::from(event.name()),
                    Source::Attribute(_) => Value::from(attribute_value),
                    Source::Enrichment { name, keys } => {
                        Source::in_enrichment(name, keys, event.enrichment.as_deref()?)?.clone()
                    }
                };
                Some((to.field(field)?.name.as_str(), value))
            })
            .collect();
        Event { spec: to, payload: Payload::new(fields), enrichment: event.enrichment.clone() }
    }
}
