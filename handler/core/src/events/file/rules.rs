//! The mapping rules of a catalog file: each checked against the events it names, so that running it cannot
//! fail (a path reads a field that is always there, of a type the emitted field takes).

use super::{is_text, optional_string, required_string, string_list, unknown_keys, RULE};
use crate::events::contents::Catalog;
use crate::events::fields::FieldType;
use crate::events::mapping::{Mapping, Source, PAYLOAD_INPUTS};
use crate::events::spec::EventSpec;
use crate::model::{quote, wrong_type, Problem};
use crate::policy::filter::EventFilter;
use crate::template::Template;
use serde_json::{Map, Value};

pub(super) fn decode_rule(
    catalog: &Catalog,
    enrichers: &[&str],
    rule: &Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Mapping> {
    let Value::Object(rule) = rule else {
        problems.push(Problem::new(path, wrong_type(rule, "a rule {\"from\": ..., \"to\": ..., \"payload\": {...}}")));
        return None;
    };
    let before = problems.len();
    unknown_keys(rule, path, &RULE, "a mapping rule", problems);
    let known = |public_only| catalog.names(public_only).join(", ");
    let from_name = required_string(rule, path, "from", problems).unwrap_or_default();
    let from = catalog.event(&from_name);
    match from {
        None if !from_name.is_empty() => problems.push(Problem::new(
            format!("{path}.from"),
            format!("{from_name} is not an event of the catalog; events: {}", known(false)),
        )),
        Some(from) if from.is_public() => problems.push(Problem::new(
            format!("{path}.from"),
            format!("{from_name} is public: rules map non-public events, a public one is delivered as it is"),
        )),
        _ => {}
    }
    let to_name = required_string(rule, path, "to", problems).unwrap_or_default();
    let to = catalog.public_event(&to_name);
    if to.is_none() && !to_name.is_empty() {
        problems.push(Problem::new(
            format!("{path}.to"),
            format!("{to_name} is not a public event of the catalog; public events: {}", known(true)),
        ));
    }
    let when = match rule.get("when") {
        None | Some(Value::Null) => None,
        Some(pattern) => {
            if let Some(from) = from {
                check_pattern_fields(pattern, from, &format!("{path}.when"), problems);
            }
            EventFilter::new(pattern)
                .map_err(|e| problems.push(Problem::new(format!("{path}.when"), e.to_string())))
                .ok()
        }
    };
    let for_each = optional_string(rule, path, "forEach", problems);
    if for_each.as_deref() == Some("") {
        problems.push(Problem::new(format!("{path}.forEach"), "is empty, expected a webhook attribute name"));
    }
    let hydrate = string_list(rule.get("hydrate"), &format!("{path}.hydrate"), problems);
    for (i, name) in hydrate.iter().enumerate() {
        let at = format!("{path}.hydrate[{i}]");
        if !enrichers.contains(&name.as_str()) {
            let declared = if enrichers.is_empty() { "none".to_owned() } else { enrichers.join(", ") };
            problems.push(Problem::new(at, format!("{name} is not an enricher of the file; enrichers: {declared}")));
            continue;
        }
        let (Some(enricher), Some(from)) = (catalog.enrichers.iter().find(|e| e.name == *name), from) else { continue };
        for field in enricher.url.fields() {
            if !from.field(field).is_some_and(|f| f.required) {
                problems.push(Problem::new(
                    at.clone(),
                    format!("{name}'s url reads {{event.payload.{field}}}, which {} does not always have", from.name),
                ));
            }
        }
    }
    let payload = match (from, to) {
        (Some(from), Some(to)) => {
            let readable = Readable { from, for_each: for_each.as_deref(), hydrate: &hydrate };
            decode_rule_payload(rule.get("payload"), &readable, to, path, problems)
        }
        _ => Vec::new(),
    };
    // Plain values on single-string fields: decided on the event itself, with the matcher's verdict (an array
    // field matches when any item does, which the shortcut would not see).
    let when_equal = match (&when, from) {
        (Some(when), Some(from)) => when
            .payload_equalities()
            .filter(|fields| fields.iter().all(|(field, _)| from.field(field).is_some_and(|f| is_text(f.ty)))),
        _ => None,
    };
    (problems.len() == before).then_some(Mapping {
        from: from_name,
        when,
        when_equal,
        to: to_name,
        for_each,
        payload,
        hydrate,
        position: 0,
    })
}

/// A `when` pattern may only name `name` and fields of the event it is on: any other key could never match.
fn check_pattern_fields(pattern: &Value, from: &EventSpec, path: &str, problems: &mut Vec<Problem>) {
    let Value::Object(pattern) = pattern else { return };
    for key in pattern.keys().filter(|k| !["name", "payload"].contains(&k.as_str())) {
        problems.push(Problem::new(format!("{path}.{key}"), "never matches: an event has only name and payload"));
    }
    if let Some(Value::Object(fields)) = pattern.get("payload") {
        for (key, values) in fields {
            let Some(field) = from.field(key) else {
                problems.push(Problem::new(
                    format!("{path}.payload.{key}"),
                    format!("never matches: {key} is not a field of {}", from.name),
                ));
                continue;
            };
            // A plain value the field can never hold (the operators' objects are the matcher's to judge).
            for (i, value) in values.as_array().into_iter().flatten().enumerate().filter(|(_, v)| !v.is_object()) {
                if let Err(invalid) = field.ty.check(value) {
                    problems
                        .push(Problem::new(format!("{path}.payload.{key}[{i}]"), format!("never matches: {invalid}")));
                }
            }
        }
    }
}

/// What a rule's payload paths may read: its event, the attribute it emits for, what its enrichers fetch.
struct Readable<'a> {
    from: &'a EventSpec,
    for_each: Option<&'a str>,
    hydrate: &'a [String],
}

fn decode_rule_payload(
    payload: Option<&Value>,
    readable: &Readable<'_>,
    to: &EventSpec,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Source)> {
    let path = format!("{path}.payload");
    let entries = match payload {
        None | Some(Value::Null) => &Map::new(),
        Some(Value::Object(entries)) => entries,
        Some(other) => {
            problems.push(Problem::new(
                path,
                wrong_type(other, "an object: each field of the emitted event and where it comes from"),
            ));
            return Vec::new();
        }
    };
    for field in to.fields.iter().filter(|f| f.required && !entries.contains_key(&f.name)) {
        problems.push(Problem::new(&path, format!("does not build {}, a required field of {}", field.name, to.name)));
    }
    let mut built = Vec::new();
    for (name, source) in entries {
        let field_path = format!("{path}.{name}");
        let Some(target) = to.field(name) else {
            problems.push(Problem::new(field_path, format!("is not a field of {}", to.name)));
            continue;
        };
        let Some(text) = source.as_str() else {
            problems.push(Problem::new(
                field_path,
                wrong_type(source, "a path such as \"event.payload.fiscalCode\", or an expression"),
            ));
            continue;
        };
        match resolve(text, readable) {
            // Known once fetched: checked then, before the rule runs (`Catalog::check_enrichment`).
            Ok((source @ Source::Enrichment { .. }, _, _)) => built.push((name.clone(), source)),
            Ok((source, ty, always)) => {
                if !fits(ty, target.ty) {
                    problems.push(Problem::new(
                        field_path,
                        format!("{text} is {}, but {}.{name} is {}", ty.label(), to.name, target.ty.label()),
                    ));
                } else if target.required && !always {
                    problems.push(Problem::new(
                        field_path,
                        format!("{text} may be missing, but {}.{name} is required", to.name),
                    ));
                } else {
                    built.push((name.clone(), source));
                }
            }
            // A path that reads nothing is a mistake; anything else is an expression, checked when it runs.
            Err(why) if is_path(text) => problems.push(Problem::new(field_path, why)),
            Err(_) => match Template::compile(text, &PAYLOAD_INPUTS) {
                Ok(template) => built.push((name.clone(), Source::Expression(template))),
                Err(error) => problems.push(Problem::new(field_path, error.to_string())),
            },
        }
    }
    built
}

/// Whether `text` is a path into what a rule reads (`event.…`, `attributes.…`, `enrichment.…`), not an
/// expression.
fn is_path(text: &str) -> bool {
    let mut parts = text.split('.');
    let root = parts.next().unwrap_or_default();
    ["event", "attributes", "enrichment"].contains(&root)
        && text.contains('.')
        && parts.all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// What a path reads, the type of what it reads and whether it is always there.
fn resolve(path: &str, readable: &Readable<'_>) -> Result<(Source, FieldType, bool), String> {
    let Readable { from, for_each, hydrate } = *readable;
    let readable = || {
        let mut paths = vec!["event.name".to_owned()];
        paths.extend(from.fields.iter().map(|f| format!("event.payload.{}", f.name)));
        paths.extend(for_each.map(|a| format!("attributes.{a}")));
        paths.extend(hydrate.iter().map(|name| format!("enrichment.{name}[.<key>...]")));
        format!("{} is not a path this rule can read; it reads {}", quote(&Value::from(path)), paths.join(", "))
    };
    if let Some(rest) = path.strip_prefix("enrichment.") {
        let mut keys = rest.split('.').map(str::to_owned);
        let name = keys.next().unwrap_or_default();
        let keys: Vec<String> = keys.collect();
        if hydrate.contains(&name) && keys.iter().all(|k| !k.is_empty()) {
            return Ok((Source::Enrichment { name, keys }, FieldType::Object, false));
        }
        return Err(readable());
    }
    if path == "event.name" {
        return Ok((Source::EventName, FieldType::NonEmptyString, true));
    }
    if let Some(field) = path.strip_prefix("event.payload.").and_then(|f| from.field(f)) {
        return Ok((Source::Field(field.name.clone()), field.ty, field.required));
    }
    match (path.strip_prefix("attributes."), for_each) {
        (Some(attribute), Some(each)) if attribute == each => {
            Ok((Source::Attribute(attribute.to_owned()), FieldType::NonEmptyString, true))
        }
        _ => Err(readable()),
    }
}

/// Whether every value of type `source` is a valid value of type `target`.
fn fits(source: FieldType, target: FieldType) -> bool {
    use FieldType::*;
    source == target
        || match (source, target) {
            (NonEmptyString | FiscalCode | OneOf(_), String) => true,
            (FiscalCode, NonEmptyString) => true,
            (OneOf(values), NonEmptyString) => values.iter().all(|v| !v.is_empty()),
            (OneOf(values), OneOf(allowed)) => values.iter().all(|v| allowed.contains(v)),
            (Integer, Number) => true,
            _ => false,
        }
}
