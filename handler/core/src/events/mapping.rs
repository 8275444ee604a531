//! The mapping table: how non-public events become public ones.
//!
//! Each rule reads like the documentation table generated from it (`schemas/catalog.md`, `docs/events.md`): when
//! event `from` arrives and its body matches the event pattern `when`, emit event `to`, once for each distinct
//! value of a webhook attribute (`forEach`) or once, with a payload built field by field. The emitted events are
//! then routed like any public event. Rules are read from the catalog file and checked there (`events::file`):
//! a path always reads what its field takes. A field made by an expression (a template) is checked when it
//! runs; one that fails fails the event, which is then rejected with the reason, nothing sent.

use super::payload::{Enrichment, Event, Kind, Payload};
use super::spec::EventSpec;
use crate::policy::filter::EventFilter;
use crate::template::Template;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

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
    /// Where the rule is in the file's `mappings`: what tells its events from another rule's.
    pub position: usize,
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
    /// Any other expression: a template reading `event`, `attributes` (`{<forEach>: value}`) and `enrichment`,
    /// whose value is checked against the field's type when it runs.
    Expression(Template),
}

/// What a payload expression reads.
pub const PAYLOAD_INPUTS: [&str; 3] = ["event", "attributes", "enrichment"];

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
            Source::Expression(template) => template.source().to_owned(),
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

    /// The event this rule emits from `event` for `attribute_value`; why not, when an expression of its
    /// payload fails or makes a value its field does not take.
    pub(crate) fn emit(&self, to: &'static EventSpec, event: &Event, attribute_value: &str) -> Result<Event, String> {
        let mut inputs: Option<[Value; 3]> = None;
        let mut fields = Vec::with_capacity(self.payload.len());
        // For a hydrated event, what its deliveries are told apart by (`Event::identity`).
        let mut identity = event.enrichment.is_some().then(serde_json::Map::new);
        for (field, source) in &self.payload {
            let Some(target) = to.field(field) else { continue };
            let value = match source {
                Source::Field(from) => event.payload.get(from).cloned(),
                Source::EventName => Some(Value::from(event.name())),
                Source::Attribute(_) => Some(Value::from(attribute_value)),
                Source::Enrichment { name, keys } => {
                    event.enrichment.as_deref().and_then(|e| Source::in_enrichment(name, keys, e)).cloned()
                }
                Source::Expression(template) => {
                    let [event, attributes, enrichment] =
                        inputs.get_or_insert_with(|| self.inputs(event, attribute_value));
                    let made = template
                        .render(&[("event", event), ("attributes", attributes), ("enrichment", enrichment)])
                        .map_err(|e| format!("the rule from {} to {}: payload.{field} {e}", self.from, self.to))?;
                    if let Some(value) = &made {
                        target.ty.check(value).map_err(|invalid| {
                            format!(
                                "the rule from {} to {}: payload.{field} made a wrong value: {invalid}",
                                self.from, self.to
                            )
                        })?;
                    } else if target.required {
                        return Err(format!(
                            "the rule from {} to {}: payload.{field} made nothing, but {}.{field} is required",
                            self.from, self.to, to.name
                        ));
                    }
                    made
                }
            };
            if let Some(identity) = &mut identity {
                // What a fetched or computed field reads, not what it read: the same whatever the answers are.
                let told_by = match source {
                    Source::Enrichment { .. } | Source::Expression(_) => Value::from(source.path()),
                    _ => value.clone().unwrap_or(Value::Null),
                };
                identity.insert(field.clone(), told_by);
            }
            if let Some(value) = value {
                fields.push((target.name.as_str(), value));
            }
        }
        let identity = identity.map(|fields| {
            let rule = serde_json::json!({"rule": self.position, "each": attribute_value, "fields": fields});
            Arc::from(rule.to_string())
        });
        Ok(Event {
            kind: Kind::Catalog(to),
            payload: Payload::new(fields),
            enrichment: event.enrichment.clone(),
            identity,
        })
    }

    /// What a payload expression reads: the event, the attribute it is emitted for, what the enrichers fetched.
    fn inputs(&self, event: &Event, attribute_value: &str) -> [Value; 3] {
        let mut attributes = serde_json::Map::new();
        if let Some(each) = &self.for_each {
            attributes.insert(each.clone(), Value::from(attribute_value));
        }
        let enrichment = event.enrichment.as_deref().map_or_else(Default::default, |e| e.clone().into_iter().collect());
        [serde_json::to_value(event).unwrap_or_default(), Value::Object(attributes), Value::Object(enrichment)]
    }
}
