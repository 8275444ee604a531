//! The mapping table: how non-public events become public ones.
//!
//! Each row reads like the documentation table generated from it (`schemas/catalog.md`, `docs/events.md`): when
//! event `from` arrives and `when` holds, emit event `to` once for each distinct value of a webhook attribute,
//! with a payload built field by field. The remapped events are then routed like any public event.

use super::catalog;
use super::payload::{Event, Payload};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

pub static MAPPINGS: &[Mapping] = &[
    Mapping {
        from: "ping:all",
        when: Condition::Always,
        to: "ping",
        for_each: ForEach::WebhookAttribute("name"),
        payload: &[("name", Source::WebhookAttribute("name"))],
    },
    Mapping {
        from: "profile:completed",
        when: Condition::FieldEquals("servicePreferencesMode", "AUTO"),
        to: "service:subscribed",
        for_each: ForEach::WebhookAttribute("serviceId"),
        payload: &[("fiscalCode", Source::Field("fiscalCode")), ("serviceId", Source::WebhookAttribute("serviceId"))],
    },
    Mapping {
        from: "profile:service-preferences-changed",
        when: Condition::FieldEquals("servicePreferencesMode", "AUTO"),
        to: "service:subscribed",
        for_each: ForEach::WebhookAttribute("serviceId"),
        payload: &[("fiscalCode", Source::Field("fiscalCode")), ("serviceId", Source::WebhookAttribute("serviceId"))],
    },
];

/// One row of the mapping table.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mapping {
    pub from: &'static str,
    pub when: Condition,
    pub to: &'static str,
    pub for_each: ForEach,
    /// The payload of the emitted event, field by field, in this order.
    #[serde(serialize_with = "serialize_payload_rule")]
    pub payload: &'static [(&'static str, Source)],
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Condition {
    Always,
    /// The incoming payload field (first) has exactly this value (second).
    FieldEquals(&'static str, &'static str),
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ForEach {
    /// Every distinct non-empty value of this attribute among the enabled webhooks. Several webhooks sharing a
    /// value yield one event, which routing then delivers to each of them (the original emitted one event per
    /// webhook, so such webhooks received duplicates).
    WebhookAttribute(&'static str),
}

#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The value of this field of the incoming payload.
    Field(&'static str),
    /// The attribute value the event is emitted for (see [`ForEach`]).
    WebhookAttribute(&'static str),
}

fn serialize_payload_rule<S: serde::Serializer>(
    rule: &&'static [(&'static str, Source)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(rule.iter().map(|(field, source)| (field, source)))
}

impl Condition {
    fn holds(&self, event: &Event) -> bool {
        match self {
            Condition::Always => true,
            Condition::FieldEquals(field, value) => event.payload.get_str(field) == Some(value),
        }
    }
}

/// The public events an event stands for: itself when it is public, otherwise what the mapping table makes of it.
/// `attribute_values(a)` gives the distinct non-empty values of attribute `a` among the enabled webhooks.
pub fn public_events<'a>(
    event: &'a Event,
    attribute_values: impl Fn(&str) -> &'a [String] + 'a,
) -> impl Iterator<Item = Cow<'a, Event>> + 'a {
    // Mappings only start from non-public events (a test checks the table), so at most one part yields.
    let itself = event.spec.is_public().then_some(Cow::Borrowed(event));
    let mapped = MAPPINGS.iter().filter(move |m| m.from == event.name() && m.when.holds(event)).flat_map(move |m| {
        let ForEach::WebhookAttribute(attribute) = m.for_each;
        attribute_values(attribute).iter().filter_map(move |value| m.emit(event, value)).map(Cow::Owned)
    });
    itself.into_iter().chain(mapped)
}

impl Mapping {
    fn emit(&self, event: &Event, attribute_value: &str) -> Option<Event> {
        let spec = catalog::event(self.to)?;
        let fields = self
            .payload
            .iter()
            .map(|(field, source)| {
                let value = match source {
                    Source::Field(from) => event.payload.get(from)?.clone(),
                    Source::WebhookAttribute(_) => Value::String(attribute_value.to_owned()),
                };
                Some((*field, value))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Event { spec, payload: Payload::new(fields) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::catalog::{Audience, CATALOG};
    use crate::events::decode;
    use crate::events::fields::FieldType;

    /// The table is interpreted without checks at run time, so every row is checked here against the catalog.
    #[test]
    fn every_row_is_consistent_with_the_catalog() {
        for m in MAPPINGS {
            let from = catalog::event(m.from).unwrap_or_else(|| panic!("{}: unknown source event", m.from));
            let to = catalog::public_event(m.to).unwrap_or_else(|| panic!("{}: target must be public", m.to));
            assert_eq!(from.audience, Audience::NonPublic, "{}: only non-public events are mapped", m.from);
            if let Condition::FieldEquals(field, value) = m.when {
                let ty =
                    from.field(field).unwrap_or_else(|| panic!("{}: condition on unknown field {field}", m.from)).ty;
                assert_eq!(ty.check(&Value::String(value.into())), Ok(()), "{}: {value} can never match", m.from);
            }
            let ForEach::WebhookAttribute(attribute) = m.for_each;
            let built: Vec<&str> = m.payload.iter().map(|(field, _)| *field).collect();
            let documented: Vec<&str> = to.fields.iter().map(|f| f.name).collect();
            assert_eq!(
                built, documented,
                "{} -> {}: the payload rule must build every field of the target",
                m.from, m.to
            );
            for (field, source) in m.payload {
                let target_type = to.field(field).unwrap().ty;
                match source {
                    Source::Field(name) => {
                        let source_type = from.field(name).unwrap_or_else(|| panic!("{}: no field {name}", m.from)).ty;
                        assert_eq!(source_type, target_type, "{} -> {}.{field}: types differ", m.from, m.to);
                    }
                    Source::WebhookAttribute(name) => {
                        assert_eq!(*name, attribute, "{}: only the fanned-out attribute has a value", m.from);
                        assert_eq!(
                            target_type,
                            FieldType::NonEmptyString,
                            "{}: attribute values are non-empty strings",
                            m.from
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_non_public_event_has_a_mapping() {
        for event in CATALOG.iter().filter(|e| !e.is_public()) {
            assert!(
                MAPPINGS.iter().any(|m| m.from == event.name),
                "{} is accepted but can never be delivered",
                event.name
            );
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
