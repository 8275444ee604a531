//! The event catalog: every event the dispatcher accepts, what its payload holds, who may see it, and how the
//! non-public ones become public ones (the mapping table).
//!
//! It is configuration, read from a catalog file (`events::file`): the IO platform's file is built in
//! (`handler/core/catalog/io.json`) and `DISPATCHER_CATALOG` names another. The runtime loads it once, before
//! anything else runs, and [`install`]s it for the process; everything else reads it with [`current`].
//! `handler schemas` turns it into the JSON Schemas in `schemas/`, the catalog served at
//! `GET /api/v1/events/catalog` and the tables in `docs/events.md`.

pub use super::contents::Catalog;
pub use super::spec::{Audience, EventSpec, Field};

use super::payload::Event;
use std::borrow::Cow;
use std::sync::OnceLock;

/// The built-in catalog file: the events and the mapping of the system this dispatcher replaces.
pub const BUILT_IN: &str = include_str!("../../catalog/io.json");

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

/// The public events an event stands for, by the process's catalog (see [`Catalog::public_events`]).
pub fn public_events<'a>(
    event: &'a Event,
    attribute_values: impl Fn(&str) -> &'a [String] + 'a,
) -> impl Iterator<Item = Result<Cow<'a, Event>, String>> + 'a {
    current().public_events(event, attribute_values)
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
