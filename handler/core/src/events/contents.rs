//! A catalog's contents: its events and its mapping rules, and what the rules make of an event. Pure data and
//! functions; which catalog the process runs on is `catalog.rs`'s.

use super::enricher::Enricher;
use super::mapping::{Mapping, Source};
use super::payload::{Enrichment, Event};
use super::spec::EventSpec;
use std::borrow::Cow;

/// A loaded catalog: its events, in file order, its mapping rules and the enrichers they use.
#[derive(Debug, Default)]
pub struct Catalog {
    pub events: Vec<EventSpec>,
    pub mappings: Vec<Mapping>,
    pub enrichers: Vec<Enricher>,
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

    /// The enrichers `event` needs: those of the rules that apply to it, each once.
    pub fn enrichers_for(&self, event: &Event) -> Vec<&Enricher> {
        let mut needed: Vec<&Enricher> = Vec::new();
        let names = self.rules_for(event).flat_map(|rule| &rule.hydrate);
        for enricher in names.filter_map(|name| self.enrichers.iter().find(|e| e.name == *name)) {
            if !needed.iter().any(|e| std::ptr::eq(*e, enricher)) {
                needed.push(enricher);
            }
        }
        needed
    }

    /// Whether what the enrichers fetched fits the payloads the rules that apply to `event` build from it (its
    /// types are known only now): the reason when it does not, so that no body leaves without its data or
    /// with data its event's schema refuses.
    pub fn check_enrichment(&self, event: &Event) -> Result<(), String> {
        let empty = Enrichment::new();
        let enrichment = event.enrichment.as_deref().unwrap_or(&empty);
        for rule in self.rules_for(event) {
            let Some(to) = self.public_event(&rule.to) else { continue };
            for (name, source) in &rule.payload {
                let (Source::Enrichment { name: enricher, keys }, Some(field)) = (source, to.field(name)) else {
                    continue;
                };
                match Source::in_enrichment(enricher, keys, enrichment) {
                    None | Some(serde_json::Value::Null) if field.required => {
                        return Err(format!("{} has no {}, which {}.{name} needs", enricher, source.path(), to.name));
                    }
                    None | Some(serde_json::Value::Null) => {}
                    Some(value) => field.ty.check(value).map_err(|invalid| {
                        format!("{} gives {}.{name} a wrong value: {invalid}", source.path(), to.name)
                    })?,
                }
            }
        }
        Ok(())
    }

    /// Whether a rule makes a field with an expression (a template, which may run up to its deadline).
    pub fn runs_templates(&self) -> bool {
        self.mappings.iter().any(|m| m.payload.iter().any(|(_, source)| matches!(source, Source::Expression(_))))
    }

    fn rules_for<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Mapping> + 'a {
        self.mappings.iter().filter(move |m| m.from == event.name() && m.holds(event))
    }

    /// Makes this catalog live as long as the process, as every event decoded from it refers to it.
    pub fn leak(self) -> &'static Catalog {
        Box::leak(Box::new(self))
    }
}

impl Catalog {
    /// The public events an event stands for: itself when it is public, otherwise what the mapping table makes
    /// of it (or why a rule could not: an expression of its payload failed). `attribute_values(a)` gives the
    /// distinct non-empty values of attribute `a` among the enabled webhooks.
    pub fn public_events<'a>(
        &'static self,
        event: &'a Event,
        attribute_values: impl Fn(&str) -> &'a [String] + 'a,
    ) -> impl Iterator<Item = Result<Cow<'a, Event>, String>> + 'a {
        // Rules only start from non-public events (the loader checks), so at most one part yields.
        let itself = event.is_public().then_some(Ok(Cow::Borrowed(event)));
        let mapped = self.rules_for(event).flat_map(move |m| {
            let to = self.public_event(&m.to);
            let values: &'a [String] = match &m.for_each {
                Some(attribute) => attribute_values(attribute),
                None => &[],
            };
            let once = m.for_each.is_none().then_some(None);
            let each = values.iter().map(|v| Some(v.as_str()));
            once.into_iter()
                .chain(each)
                .filter_map(move |value| to.map(|to| m.emit(to, event, value.unwrap_or_default()).map(Cow::Owned)))
        });
        itself.into_iter().chain(mapped)
    }
}
