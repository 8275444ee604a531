//! Which webhooks receive a public event: the routing rule of the original system, and an index that applies
//! it without scanning every webhook.

use super::Webhook;
use crate::events::Event;
use std::collections::HashMap;

/// The routing rule, for one webhook and one public event. A webhook receives the event when
/// 1. it is enabled and subscribed to the event,
/// 2. it has every attribute the event requires (a `ping` needs a `name` attribute), and
/// 3. every payload field that is also one of its attributes has the attribute's value.
pub fn receives(webhook: &Webhook, event: &Event) -> bool {
    let config = &webhook.config;
    !config.disabled
        && config.subscribes_to(event.name())
        && event
            .spec
            .required_attributes()
            .iter()
            .all(|a| config.attributes.contains_key(*a))
        && event.payload.iter().all(|(key, value)| {
            config
                .attributes
                .get(key)
                .is_none_or(|expected| value.as_str() == Some(expected))
        })
}

/// A set of webhooks, indexed for routing. Build it once per change of the webhooks, route many events with it.
#[derive(Debug, Default)]
pub struct WebhookIndex {
    webhooks: Vec<Webhook>,
    routes: HashMap<&'static str, Routes>,
    attribute_values: HashMap<String, Vec<String>>,
}

/// The candidates for one public event: the webhooks that pass rules 1 and 2, also grouped by the value of the
/// event's first required attribute, which is what makes rule 3 selective.
#[derive(Debug, Default)]
struct Routes {
    all: Vec<usize>,
    by_value: HashMap<String, Vec<usize>>,
}

impl WebhookIndex {
    pub fn new(webhooks: Vec<Webhook>) -> Self {
        let mut routes: HashMap<&'static str, Routes> = HashMap::new();
        let mut attribute_values: HashMap<String, Vec<String>> = HashMap::new();
        for (i, webhook) in webhooks
            .iter()
            .enumerate()
            .filter(|(_, w)| !w.config.disabled)
        {
            let attributes = &webhook.config.attributes;
            for (key, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
                let values = attribute_values.entry(key.clone()).or_default();
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
            for spec in webhook
                .config
                .subscriptions
                .iter()
                .filter_map(|s| crate::events::catalog::public_event(s))
            {
                let required = spec.required_attributes();
                if !required.iter().all(|a| attributes.contains_key(*a)) {
                    continue;
                }
                let route = routes.entry(spec.name).or_default();
                route.all.push(i);
                if let Some(value) = required.first().and_then(|a| attributes.get(*a)) {
                    route.by_value.entry(value.clone()).or_default().push(i);
                }
            }
        }
        WebhookIndex {
            webhooks,
            routes,
            attribute_values,
        }
    }

    pub fn webhooks(&self) -> &[Webhook] {
        &self.webhooks
    }

    /// The webhooks that receive `event`, in the order they were given.
    pub fn recipients<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Webhook> + 'a {
        let candidates: &[usize] = match self.routes.get(event.name()) {
            None => &[],
            Some(route) => match event
                .spec
                .required_attributes()
                .first()
                .and_then(|a| event.payload.get_str(a))
            {
                Some(value) => route.by_value.get(value).map_or(&[], Vec::as_slice),
                None => &route.all,
            },
        };
        candidates
            .iter()
            .map(|&i| &self.webhooks[i])
            .filter(move |w| receives(w, event))
    }

    /// The distinct non-empty values of an attribute among the enabled webhooks, in the order first seen.
    pub fn attribute_values(&self, attribute: &str) -> &[String] {
        self.attribute_values
            .get(attribute)
            .map_or(&[], Vec::as_slice)
    }
}
