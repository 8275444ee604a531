//! The event catalog: every event the dispatcher accepts, what its payload holds, and who may see it.
//!
//! This table is the contract with producers and integrators. `handler schemas` turns it into the JSON Schemas
//! in `schemas/`, the catalog served at `GET /api/v1/events/catalog` and the tables in `docs/events.md`.
//! To add an event: add a row here (and a row in [`super::mapping::MAPPINGS`] if it is not public), then run
//! `cargo run -p handler -- schemas`.

use super::fields::FieldType::{self, FiscalCode, NonEmptyString, ServicePreferencesMode};
use serde::Serialize;

pub static CATALOG: &[EventSpec] = &[
    EventSpec {
        name: "ping",
        audience: Audience::Public { required_attributes: &["name"] },
        description: "Just a ping on a registered webhook, used for testing the system.",
        fields: &[Field { name: "name", ty: NonEmptyString, description: "the name of the webhook to be pinged" }],
    },
    EventSpec {
        name: "service:subscribed",
        audience: Audience::Public { required_attributes: &["serviceId"] },
        description: "Emitted when a citizen subscribes to a service.",
        fields: &[
            Field { name: "fiscalCode", ty: FiscalCode, description: "the citizen's fiscal code" },
            Field { name: "serviceId", ty: NonEmptyString, description: "the service the citizen subscribed to" },
        ],
    },
    EventSpec {
        name: "ping:all",
        audience: Audience::NonPublic,
        description: "Just a ping on all registered webhooks, used for testing the system.",
        fields: &[],
    },
    EventSpec {
        name: "profile:completed",
        audience: Audience::NonPublic,
        description:
            "A citizen completed their onboarding. May emit `service:subscribed` for every registered service.",
        fields: &[
            Field { name: "fiscalCode", ty: FiscalCode, description: "the citizen's fiscal code" },
            Field {
                name: "servicePreferencesMode",
                ty: ServicePreferencesMode,
                description: "how the citizen handles service subscriptions",
            },
        ],
    },
    EventSpec {
        name: "profile:service-preferences-changed",
        audience: Audience::NonPublic,
        description: "A citizen changed how they handle service subscriptions. \
                      May emit `service:subscribed` for every registered service.",
        fields: &[
            Field { name: "fiscalCode", ty: FiscalCode, description: "the citizen's fiscal code" },
            Field { name: "servicePreferencesMode", ty: ServicePreferencesMode, description: "the new mode" },
            Field { name: "oldServicePreferencesMode", ty: ServicePreferencesMode, description: "the previous mode" },
        ],
    },
];

/// One event of the catalog.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSpec {
    pub name: &'static str,
    #[serde(flatten)]
    pub audience: Audience,
    pub description: &'static str,
    /// The payload fields, all required. Other keys a producer sends are dropped, never delivered.
    pub fields: &'static [Field],
}

/// Who sees an event.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Audience {
    /// Delivered to webhooks subscribed to it that carry every required attribute.
    #[serde(rename_all = "camelCase")]
    Public { required_attributes: &'static [&'static str] },
    /// Never delivered as is: the mapping table turns it into public events.
    NonPublic,
}

/// One payload field.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub description: &'static str,
}

impl EventSpec {
    pub fn is_public(&self) -> bool {
        matches!(self.audience, Audience::Public { .. })
    }

    /// The webhook attributes a webhook must have to receive this event (none for non-public events).
    pub fn required_attributes(&self) -> &'static [&'static str] {
        match self.audience {
            Audience::Public { required_attributes } => required_attributes,
            Audience::NonPublic => &[],
        }
    }

    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The catalog entry of an event name.
pub fn event(name: &str) -> Option<&'static EventSpec> {
    CATALOG.iter().find(|e| e.name == name)
}

/// The catalog entry of a public event name.
pub fn public_event(name: &str) -> Option<&'static EventSpec> {
    event(name).filter(|e| e.is_public())
}

/// Names of the catalog's events, in catalog order, for "known events are ..." messages.
pub fn names(public_only: bool) -> Vec<&'static str> {
    CATALOG.iter().filter(|e| !public_only || e.is_public()).map(|e| e.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_have_no_dots_or_spaces() {
        let mut seen = HashSet::new();
        for event in CATALOG {
            assert!(seen.insert(event.name), "{} appears twice", event.name);
            assert!(
                !event.name.contains(['.', ' ', ',']),
                "{} would break file names or subscription lists",
                event.name
            );
        }
    }

    #[test]
    fn required_attributes_of_public_events_are_payload_fields() {
        // Routing matches a required attribute against the payload value of the same name.
        for event in CATALOG {
            for attribute in event.required_attributes() {
                assert!(
                    event.field(attribute).is_some(),
                    "{}: required attribute {attribute} is not a field",
                    event.name
                );
            }
        }
    }

    #[test]
    fn the_catalog_holds_the_events_of_the_original_system() {
        assert_eq!(names(true), ["ping", "service:subscribed"]);
        assert_eq!(
            names(false),
            ["ping", "service:subscribed", "ping:all", "profile:completed", "profile:service-preferences-changed"]
        );
        assert_eq!(event("ping").unwrap().required_attributes(), ["name"]);
        assert_eq!(event("service:subscribed").unwrap().required_attributes(), ["serviceId"]);
        assert!(public_event("ping:all").is_none());
        assert!(event("nope").is_none());
    }
}
