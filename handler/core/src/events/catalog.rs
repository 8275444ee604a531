//! The event catalog: every event the dispatcher accepts, what its payload holds, who may see it, and how the
//! non-public ones become public ones (the mapping table).
//!
//! It is configuration, read from a catalog file (`events::file`): the IO platform's file is built in
//! (`handler/core/catalog/io.json`) and `DISPATCHER_CATALOG` names another. The runtime loads it once, before
//! anything else runs, and [`install`]s it for the process; everything else reads it with [`current`].
//! `handler schemas` turns it into the JSON Schemas in `schemas/`, the catalog served at
//! `GET /api/v1/events/catalog` and the tables in `docs/events.md`.

use super::fields::FieldType;
use super::mapping::Mapping;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;
use std::sync::OnceLock;

/// The built-in catalog file: the events and the mapping of the system this dispatcher replaces.
pub const BUILT_IN: &str = include_str!("../../catalog/io.json");

/// A loaded catalog: its events, in file order, and its mapping rules.
#[derive(Debug)]
pub struct Catalog {
    pub events: Vec<EventSpec>,
    pub mappings: Vec<Mapping>,
}

/// One event of the catalog.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSpec {
    pub name: String,
    #[serde(flatten)]
    pub audience: Audience,
    pub description: String,
    /// The payload fields. Other keys a producer sends are dropped, never delivered.
    pub fields: Vec<Field>,
}

/// Who sees an event.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Audience {
    /// Delivered to webhooks subscribed to it that carry every required attribute.
    #[serde(rename_all = "camelCase")]
    Public { required_attributes: Vec<String> },
    /// Never delivered as is: the mapping table turns it into public events.
    NonPublic,
}

/// One payload field.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    pub description: String,
    /// A valid value for sample events, when the file gives one (`examples`).
    pub example: Option<serde_json::Value>,
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut field = serializer.serialize_struct("Field", 4)?;
        field.serialize_field("name", &self.name)?;
        field.serialize_field("type", &self.ty.label().replace('`', ""))?;
        field.serialize_field("required", &self.required)?;
        field.serialize_field("description", &self.description)?;
        field.end()
    }
}

impl Field {
    /// A valid value of this field for sample events.
    pub fn example(&self) -> serde_json::Value {
        self.example.clone().unwrap_or_else(|| self.ty.example(&self.name))
    }
}

impl EventSpec {
    pub fn is_public(&self) -> bool {
        matches!(self.audience, Audience::Public { .. })
    }

    /// The webhook attributes a webhook must have to receive this event (none for non-public events).
    pub fn required_attributes(&self) -> &[String] {
        match &self.audience {
            Audience::Public { required_attributes } => required_attributes,
            Audience::NonPublic => &[],
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

impl Catalog {
    /// The catalog entry of an event name.
    pub fn event(&self, name: &str) -> Option<&EventSpec> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The catalog entry of a public event name.
    pub fn public_event(&self, name: &str) -> Option<&EventSpec> {
        self.event(name).filter(|e| e.is_public())
    }

    /// Names of the catalog's events, in catalog order, for "known events are ..." messages.
    pub fn names(&self, public_only: bool) -> Vec<&str> {
        self.events.iter().filter(|e| !public_only || e.is_public()).map(|e| e.name.as_str()).collect()
    }

    /// Where an event is in the catalog (by address: specs are references into it).
    pub fn position(&self, spec: &EventSpec) -> Option<usize> {
        self.events.iter().position(|e| std::ptr::eq(e, spec))
    }

    /// Makes this catalog live as long as the process, as every event decoded from it refers to it.
    pub fn leak(self) -> &'static Catalog {
        Box::leak(Box::new(self))
    }
}

static CURRENT: OnceLock<&'static Catalog> = OnceLock::new();

/// The built-in catalog, loaded once.
pub fn built_in() -> &'static Catalog {
    static BUILT: OnceLock<&'static Catalog> = OnceLock::new();
    BUILT.get_or_init(|| match super::file::load(BUILT_IN) {
        Ok(catalog) => catalog.leak(),
        // A test loads the built-in file; a binary whose own file is broken cannot have been released.
        Err(report) => panic!("the built-in catalog file is broken: {report}"),
    })
}

/// Makes `catalog` the process's catalog. Must run before the first event is decoded; false when another one
/// is already in use.
pub fn install(catalog: &'static Catalog) -> bool {
    CURRENT.set(catalog).is_ok() || CURRENT.get().is_some_and(|c| std::ptr::eq(*c, catalog))
}

/// The process's catalog: the installed one, or the built-in one when none was.
pub fn current() -> &'static Catalog {
    CURRENT.get_or_init(built_in)
}

/// The current catalog's entry of an event name.
pub fn event(name: &str) -> Option<&'static EventSpec> {
    current().event(name)
}

/// The current catalog's entry of a public event name.
pub fn public_event(name: &str) -> Option<&'static EventSpec> {
    current().public_event(name)
}

/// Names of the current catalog's events.
pub fn names(public_only: bool) -> Vec<&'static str> {
    current().names(public_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_holds_the_events_of_the_original_system() {
        assert_eq!(names(true), ["ping", "service:subscribed"]);
        assert_eq!(
            names(false),
            ["ping", "service:subscribed", "ping:all", "profile:completed", "profile:service-preferences-changed"]
        );
        assert_eq!(event("ping").unwrap().required_attributes(), ["name"]);
        assert_eq!(event("service:subscribed").unwrap().required_attributes(), ["serviceId"]);
        assert!(public_event("ping:all").is_none());
        assert!(event("nope").is_none());
        assert_eq!(current().mappings.len(), 3);
    }
}
