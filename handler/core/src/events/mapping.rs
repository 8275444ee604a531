//! The mapping table: how non-public events become public ones.
//!
//! Each rule reads like the documentation table generated from it (`schemas/catalog.md`, `docs/events.md`): when
//! event `from` arrives and its body matches the event pattern `when`, emit event `to`, once for each distinct
//! value of a webhook attribute (`forEach`) or once, with a payload built field by field. The emitted events are
//! then routed like any public event. Rules are read from the catalog file and checked there (`events::file`),
//! so running one cannot fail.

use super::catalog::{self, Catalog, EventSpec};
use super::payload::{Event, Payload};
use crate::policy::filter::EventFilter;
use serde::ser::{SerializeMap, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

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
}

impl Source {
    /// The path as written in the catalog file.
    pub fn path(&self) -> String {
        match self {
            Source::Field(field) => format!("event.payload.{field}"),
            Source::EventName => "event.name".to_owned(),
            Source::Attribute(attribute) => format!("attributes.{attribute}"),
        }
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
        let mut rule = serializer.serialize_struct("Mapping", 5)?;
        rule.serialize_field("from", &self.from)?;
        rule.serialize_field("when", &self.when.as_ref().map(EventFilter::pattern))?;
        rule.serialize_field("to", &self.to)?;
        rule.serialize_field("forEach", &self.for_each)?;
        rule.serialize_field("payload", &Fields(&self.payload))?;
        rule.end()
    }
}

/// The public events an event stands for, by the process's catalog (see [`Catalog::public_events`]).
pub fn public_events<'a>(
    event: &'a Event,
    attribute_values: impl Fn(&str) -> &'a [String] + 'a,
) -> impl Iterator<Item = Cow<'a, Event>> + 'a {
    catalog::current().public_events(event, attribute_values)
}

impl Catalog {
    /// The public events an event stands for: itself when it is public, otherwise what the mapping table makes
    /// of it. `attribute_values(a)` gives the distinct non-empty values of attribute `a` among the enabled
    /// webhooks.
    pub fn public_events<'a>(
        &'static self,
        event: &'a Event,
        attribute_values: impl Fn(&str) -> &'a [String] + 'a,
    ) -> impl Iterator<Item = Cow<'a, Event>> + 'a {
        // Rules only start from non-public events (the loader checks), so at most one part yields.
        let itself = event.spec.is_public().then_some(Cow::Borrowed(event));
        let mapped =
            self.mappings.iter().filter(move |m| m.from == event.name() && m.holds(event)).flat_map(move |m| {
                let to = self.public_event(&m.to);
                let values: &'a [String] = match &m.for_each {
                    Some(attribute) => attribute_values(attribute),
                    None => &[],
                };
                let once = m.for_each.is_none().then_some(None);
                let each = values.iter().map(|v| Some(v.as_str()));
                once.into_iter()
                    .chain(each)
                    .filter_map(move |value| to.map(|to| Cow::Owned(m.emit(to, event, value.unwrap_or_default()))))
            });
        itself.into_iter().chain(mapped)
    }
}

impl Mapping {
    fn holds(&self, event: &Event) -> bool {
        if let Some(fields) = &self.when_equal {
            return fields.iter().all(|(field, values)| {
                event.payload.get_str(field).is_some_and(|value| values.iter().any(|v| v == value))
            });
        }
        self.when.as_ref().is_none_or(|when| when.matches(&super::payload::body(event)))
    }

    fn emit(&self, to: &'static EventSpec, event: &Event, attribute_value: &str) -> Event {
        let fields = self
            .payload
            .iter()
            .filter_map(|(field, source)| {
                let value = match source {
                    Source::Field(from) => event.payload.get(from)?.clone(),
                    Source::EventName => Value::from(event.name()),
                    Source::Attribute(_) => Value::from(attribute_value),
                };
                Some((to.field(field)?.name.as_str(), value))
            })
            .collect();
        Event { spec: to, payload: Payload::new(fields) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode;

    /// The shortcut for patterns of plain values gives the matcher's verdict on every event of the table.
    #[test]
    fn equal_values_decide_as_the_matcher_does() {
        let rules: Vec<&Mapping> = catalog::built_in().mappings.iter().filter(|m| m.when_equal.is_some()).collect();
        assert_eq!(rules.len(), 2);
        for rule in rules {
            for mode in ["AUTO", "MANUAL", "LEGACY"] {
                let event = decode(
                    format!(
                        r#"{{"name":"{}","payload":{{"fiscalCode":"AAABBB00A00A000B","servicePreferencesMode":"{mode}","oldServicePreferencesMode":"AUTO"}}}}"#,
                        rule.from
                    )
                    .as_bytes(),
                )
                .unwrap();
                let by_matcher = rule.when.as_ref().unwrap().matches(&super::super::payload::body(&event));
                assert_eq!(rule.holds(&event), by_matcher, "{} {mode}", rule.from);
                assert_eq!(by_matcher, mode == "AUTO");
            }
        }
    }

    fn names_and_payloads(input: &str, values: &[(&str, Vec<String>)]) -> Vec<String> {
        let event = decode(input.as_bytes()).unwrap();
        public_events(&event, |a| values.iter().find(|(k, _)| *k == a).map(|(_, v)| v.as_slice()).unwrap_or(&[]))
            .map(|e| serde_json::to_string(&e).unwrap())
            .collect()
    }

    #[test]
    fn the_table_maps_as_the_original_system_did() {
        let values =
            [("name", vec!["wh1".to_owned(), "wh2".to_owned()]), ("serviceId", vec!["S1".to_owned(), "S2".to_owned()])];
        let fc = "AAABBB00A00A000B";
        let cases: Vec<(String, Vec<String>)> = vec![
            (
                r#"{"name":"ping:all"}"#.into(),
                vec![
                    r#"{"name":"ping","payload":{"name":"wh1"}}"#.into(),
                    r#"{"name":"ping","payload":{"name":"wh2"}}"#.into(),
                ],
            ),
            (
                format!(
                    r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO"}}}}"#
                ),
                vec![
                    format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S1"}}}}"#),
                    format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S2"}}}}"#),
                ],
            ),
            (
                format!(
                    r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL"}}}}"#
                ),
                vec![],
            ),
            (
                format!(
                    r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"LEGACY"}}}}"#
                ),
                vec![],
            ),
            (
                format!(
                    r#"{{"name":"profile:service-preferences-changed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO","oldServicePreferencesMode":"MANUAL"}}}}"#
                ),
                vec![
                    format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S1"}}}}"#),
                    format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S2"}}}}"#),
                ],
            ),
            (
                format!(
                    r#"{{"name":"profile:service-preferences-changed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL","oldServicePreferencesMode":"AUTO"}}}}"#
                ),
                vec![],
            ),
            (
                r#"{"name":"ping","payload":{"name":"wh9"}}"#.into(),
                vec![r#"{"name":"ping","payload":{"name":"wh9"}}"#.into()],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(names_and_payloads(&input, &values), expected, "{input}");
        }
        assert!(names_and_payloads(r#"{"name":"ping:all"}"#, &[]).is_empty(), "no webhooks, no pings");
    }
}
