//! A catalog's contents: its events and its mapping rules, and what the rules make of an event. Pure data and
//! functions; which catalog the process runs on is `catalog.rs`'s.

use super::mapping::Mapping;
use super::payload::Event;
use super::spec::EventSpec;
use std::borrow::Cow;

/// A loaded catalog: its events, in file order, and its mapping rules.
#[derive(Debug)]
pub struct Catalog {
    pub events: Vec<EventSpec>,
    pub mappings: Vec<Mapping>,
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
