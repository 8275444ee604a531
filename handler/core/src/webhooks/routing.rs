//! Which webhooks receive a public event: the routing rule of the original system, and an index that applies
//! it without scanning every webhook.

use crate::events::catalog::{self, EventSpec};
use crate::events::Event;
use crate::inbound::received;
use crate::model::{blocked, Tenant, TenantId, Webhook, WebhookId};
use crate::policy::filter::{FilterMemo, FilterSet};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// The routing rule, for one webhook and one public event. A webhook receives the event when
/// 1. it is enabled and subscribed to the event,
/// 2. it has every attribute the event requires (a `ping` needs a `name` attribute), and
/// 3. every payload field that is also one of its attributes has the attribute's value.
///
/// A received event (`stripe:customer.updated`) goes to the operator's webhooks subscribed to its name or to
/// its source's `stripe:*`: it requires no attribute and rule 3 does not read a provider's body.
pub fn receives(webhook: &Webhook, event: &Event) -> bool {
    !webhook.config.disabled && would_receive(webhook, event)
}

/// Rules 2 and 3, and the subscription: whether the webhook would receive the event if it were enabled.
pub fn would_receive(webhook: &Webhook, event: &Event) -> bool {
    let config = &webhook.config;
    if event.spec().is_none() {
        return config.tenant.is_none() && received::subscribed(&config.subscriptions, event.name());
    }
    config.subscribes_to(event.name())
        && event.required_attributes().iter().all(|a| config.attributes.contains_key(a))
        && attributes_match(webhook, event)
}

/// Rule 3 alone: the webhook's attributes agree with the payload fields of the same name.
fn attributes_match(webhook: &Webhook, event: &Event) -> bool {
    let attributes = &webhook.config.attributes;
    let fields = event.payload.fields().iter();
    fields.into_iter().all(|(key, value)| attributes.get(*key).is_none_or(|expected| value.as_str() == Some(expected)))
}

/// A set of webhooks and the tenants they belong to, indexed for routing and by id. Build it once per change of
/// either, route many events with it. A tenant's webhook that its tenant's grants no longer cover (or whose
/// tenant is disabled or gone) is left out of routing altogether: not even logged as skipped.
#[derive(Debug, Default)]
pub struct WebhookIndex {
    webhooks: Vec<Arc<Webhook>>,
    tenants: HashMap<TenantId, Arc<Tenant>>,
    by_id: HashMap<WebhookId, usize>,
    /// Indexed like the catalog's events: the routes of the event at the same position (empty for non-public events).
    routes: Vec<Routes>,
    /// The operator's webhooks by subscription to received events (`stripe:customer.updated`, `stripe:*`).
    received: HashMap<String, Vec<usize>>,
    attribute_values: HashMap<String, Vec<String>>,
    filters: FilterSet,
    /// The positions of the disabled webhooks, whose deliveries are logged as skipped.
    disabled: Vec<usize>,
    /// Whether a webhook has a transform: routing then runs programs, which may take milliseconds.
    transforms: bool,
}

/// The candidates for one public event: the webhooks that pass rules 1 and 2, also grouped by the value of the
/// event's first required attribute, which is what makes rule 3 selective.
#[derive(Debug, Default)]
struct Routes {
    all: Vec<usize>,
    by_value: HashMap<String, Vec<usize>>,
}

impl WebhookIndex {
    /// The operator's webhooks alone (no tenant).
    pub fn new(webhooks: Vec<Webhook>) -> Self {
        WebhookIndex::with_tenants(webhooks, Vec::new())
    }

    pub fn with_tenants(webhooks: Vec<Webhook>, tenants: Vec<Tenant>) -> Self {
        let webhooks: Vec<Arc<Webhook>> = webhooks.into_iter().map(Arc::new).collect();
        let tenants: HashMap<TenantId, Arc<Tenant>> =
            tenants.into_iter().map(|t| (t.id.clone(), Arc::new(t))).collect();
        let by_id = webhooks.iter().enumerate().map(|(i, w)| (w.id.clone(), i)).collect();
        let mut routes: Vec<Routes> = catalog::current().events.iter().map(|_| Routes::default()).collect();
        let mut attribute_values: HashMap<String, Vec<String>> = HashMap::default();
        let mut received: HashMap<String, Vec<usize>> = HashMap::default();
        let blocked: Vec<bool> = webhooks.iter().map(|w| block_reason(w, &tenants).is_some()).collect();
        for (i, webhook) in webhooks.iter().enumerate().filter(|(i, w)| !w.config.disabled && !blocked[*i]) {
            let attributes = &webhook.config.attributes;
            for (key, value) in attributes.iter().filter(|(_, v)| !v.is_empty()) {
                let values = attribute_values.entry(key.clone()).or_default();
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
            // Received events are the operator's: a tenant's grants say nothing about a provider's body.
            let subscriptions = webhook.config.subscriptions.iter();
            for name in subscriptions.filter(|s| webhook.config.tenant.is_none() && received::is_received(s)) {
                received.entry(name.clone()).or_default().push(i);
            }
            for spec in webhook.config.subscriptions.iter().filter_map(|s| catalog::public_event(s)) {
                let required = spec.required_attributes();
                let Some(route) = catalog_position(spec).map(|p| &mut routes[p]) else { continue };
                if !required.iter().all(|a| attributes.contains_key(a)) {
                    continue;
                }
                route.all.push(i);
                if let Some(value) = required.first().and_then(|a| attributes.get(a)) {
                    route.by_value.entry(value.clone()).or_default().push(i);
                }
            }
        }
        let filters = FilterSet::new(webhooks.iter().map(|w| w.config.filter.as_ref()));
        let disabled = (0..webhooks.len()).filter(|&i| webhooks[i].config.disabled && !blocked[i]).collect();
        let transforms = webhooks.iter().any(|w| w.config.transform.is_some());
        WebhookIndex { webhooks, tenants, by_id, routes, received, attribute_values, filters, disabled, transforms }
    }

    pub fn tenant(&self, id: &TenantId) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// Why `webhook` (a tenant's) receives nothing now, as the tenants of this index see it.
    pub fn blocked(&self, webhook: &Webhook) -> Option<String> {
        block_reason(webhook, &self.tenants)
    }

    /// Every webhook, enabled or not, in the order they were given.
    pub fn webhooks(&self) -> &[Arc<Webhook>] {
        &self.webhooks
    }

    pub fn get(&self, id: &WebhookId) -> Option<&Arc<Webhook>> {
        self.by_id.get(id).map(|&i| &self.webhooks[i])
    }

    pub fn len(&self) -> usize {
        self.webhooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.webhooks.is_empty()
    }

    /// Whether routing runs a webhook's transform (see [`crate::template`]), so may take milliseconds.
    pub fn runs_transforms(&self) -> bool {
        self.transforms
    }

    /// The disabled webhooks, in the order they were given.
    pub fn disabled(&self) -> impl Iterator<Item = &Arc<Webhook>> + '_ {
        self.disabled.iter().map(|&i| &self.webhooks[i])
    }

    /// The webhooks that receive `event`, in the order they were given, with their positions.
    pub fn recipients<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = (usize, &'a Arc<Webhook>)> + 'a {
        let Some(spec) = event.spec() else {
            return Recipients::Received(self.received_by(event.name()).into_iter());
        };
        let route = catalog_position(spec).map(|p| &self.routes[p]);
        let key = spec.required_attributes().first().and_then(|a| event.payload.get_str(a));
        let candidates: &[usize] = match (route, key) {
            (None, _) => &[],
            (Some(route), Some(value)) => route.by_value.get(value).map_or(&[], Vec::as_slice),
            (Some(route), None) => &route.all,
        };
        // Candidates pass rules 1 and 2 by construction.
        Recipients::Catalog { candidates: candidates.iter(), webhooks: &self.webhooks, event }
    }

    /// The webhooks subscribed to a received event by its name or by its source's `*`, each once, in order.
    fn received_by(&self, name: &str) -> Vec<(usize, &Arc<Webhook>)> {
        let by_name = self.received.get(name).map_or(&[][..], Vec::as_slice);
        let every = received::every_of(name).and_then(|all| self.received.get(&all)).map_or(&[][..], Vec::as_slice);
        let mut positions: Vec<usize> = by_name.iter().chain(every).copied().collect();
        positions.sort_unstable();
        positions.dedup();
        positions.into_iter().map(|i| (i, &self.webhooks[i])).collect()
    }

    /// Whether `body`, a delivery to the webhook at `position`, passes that webhook's filter.
    pub fn passes_filter(&self, position: usize, body: &str, memo: &mut FilterMemo) -> bool {
        self.filters.passes(position, body, memo)
    }

    /// The distinct non-empty values of an attribute among the enabled webhooks, in the order first seen.
    pub fn attribute_values(&self, attribute: &str) -> &[String] {
        self.attribute_values.get(attribute).map_or(&[], Vec::as_slice)
    }
}

fn block_reason(webhook: &Webhook, tenants: &HashMap<TenantId, Arc<Tenant>>) -> Option<String> {
    let tenant = webhook.config.tenant.as_ref()?;
    blocked(webhook, tenants.get(tenant).map(|t| &**t))
}

/// The recipients of a catalog event (an index's selection) or of a received one (gathered).
enum Recipients<'a> {
    Catalog { candidates: std::slice::Iter<'a, usize>, webhooks: &'a [Arc<Webhook>], event: &'a Event },
    Received(std::vec::IntoIter<(usize, &'a Arc<Webhook>)>),
}

impl<'a> Iterator for Recipients<'a> {
    type Item = (usize, &'a Arc<Webhook>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Recipients::Catalog { candidates, webhooks, event } => {
                candidates.by_ref().map(|&i| (i, &webhooks[i])).find(|(_, w)| attributes_match(w, event))
            }
            Recipients::Received(each) => each.next(),
        }
    }
}

/// Where an event is in the process's catalog.
fn catalog_position(spec: &EventSpec) -> Option<usize> {
    catalog::current().position(spec)
}
