//! A webhook's content filter: an event pattern in the Amazon EventBridge pattern language, matched by the
//! `quamina` crate against the body the webhook would receive (`{"name": ..., "payload": {...}}`), after
//! routing. A pattern names the fields it constrains; each field lists the values or operators it accepts
//! (`prefix`, `suffix`, `anything-but`, `exists`, `numeric`, `equals-ignore-case`, `wildcard`, ...), any of which
//! may match. One departure from EventBridge, which only sees leaf values: `exists` holds for a field whose value
//! is an object or an array of them too (`{"errors": [{"exists": true}]}` matches a GraphQL error list).

use quamina::Quamina;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// A compiled pattern; equal to another when their patterns are.
#[derive(Clone)]
pub struct EventFilter {
    pattern: Value,
    matcher: Arc<Quamina<()>>,
    /// How many values and operators it lists, in all.
    weight: usize,
    /// The fields it asks `exists` of, each a path of keys.
    exists: Arc<[Vec<String>]>,
}

/// The values and operators `pattern` lists (the leaves of its arrays).
fn weight(pattern: &Value) -> usize {
    match pattern {
        Value::Object(fields) => fields.values().map(weight).sum(),
        Value::Array(values) => values.len(),
        _ => 1,
    }
}

/// Why a pattern is not one, in words that follow the field's name in a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Not an object, or one with no value to match anywhere (`{}`, `{"name": {}}`): quamina's verdicts on
    /// those differ between a matcher of one pattern and a matcher of several (found by the fuzz tests).
    #[error(
        "is not an event pattern: an object naming the fields to match, e.g. \
         {{\"payload\": {{\"fiscalCode\": [{{\"prefix\": \"AAA\"}}]}}}}"
    )]
    NotAPattern,
    /// Not the shape of a pattern (`policy::pattern`).
    #[error("{0}")]
    Shape(String),
    /// The matcher's own words.
    #[error("{0}")]
    Refused(String),
    /// Of the documented shape, but its combinations of fields and operators are more than the matcher builds
    /// (quamina's own limit on the states of one pattern).
    #[error("is too complex for the matcher: {0}")]
    TooComplex(String),
}

impl EventFilter {
    /// Compiles `pattern`; the error says what is wrong with it, as the matcher found it.
    pub fn new(pattern: &Value) -> Result<EventFilter, PatternError> {
        if !pattern.is_object() || weight(pattern) == 0 {
            return Err(PatternError::NotAPattern);
        }
        super::pattern::check(pattern).map_err(PatternError::Shape)?;
        let weight = weight(pattern);
        let mut matcher = Quamina::new();
        matcher.add_pattern((), &pattern.to_string()).map_err(|e| match e {
            quamina::QuaminaError::PatternTooComplex(why) => PatternError::TooComplex(why),
            other => PatternError::Refused(other.to_string()),
        })?;
        let mut exists = Vec::new();
        exists_paths(pattern, &mut Vec::new(), &mut exists);
        Ok(EventFilter { pattern: pattern.clone(), matcher: Arc::new(matcher), weight, exists: exists.into() })
    }

    pub fn pattern(&self) -> &Value {
        &self.pattern
    }

    /// The pattern read as "each of these payload fields is one of these strings", when that is all it says
    /// (`{"payload": {"mode": ["AUTO"]}}`): for a field that holds a single string, the same verdict as the
    /// matcher's, without writing the event out.
    pub fn payload_equalities(&self) -> Option<Vec<(String, Vec<String>)>> {
        let top = self.pattern.as_object().filter(|top| top.len() == 1)?;
        let fields = top.get("payload")?.as_object().filter(|fields| !fields.is_empty())?;
        fields
            .iter()
            .map(|(field, values)| {
                let values: Option<Vec<String>> =
                    values.as_array()?.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                Some((field.clone(), values.filter(|v| !v.is_empty())?))
            })
            .collect()
    }

    /// Whether the delivery body `body` (JSON) passes. A body the matcher cannot read never does.
    pub fn matches(&self, body: &str) -> bool {
        if self.exists.is_empty() {
            return self.matcher.has_matches(body.as_bytes()).unwrap_or(false);
        }
        let Ok(mut value) = serde_json::from_str::<Value>(body) else { return false };
        for path in self.exists.iter() {
            containers_as_leaves(&mut value, path);
        }
        self.matcher.has_matches(value.to_string().as_bytes()).unwrap_or(false)
    }
}

/// Collects the paths of the fields `pattern` asks `exists` of.
fn exists_paths(pattern: &Value, prefix: &mut Vec<String>, paths: &mut Vec<Vec<String>>) {
    let Value::Object(fields) = pattern else { return };
    for (key, value) in fields {
        match value {
            Value::Object(_) => {
                prefix.push(key.clone());
                exists_paths(value, prefix, paths);
                prefix.pop();
            }
            Value::Array(values) if values.iter().any(|v| v.get("exists").is_some()) => {
                paths.push(prefix.iter().cloned().chain([key.clone()]).collect());
            }
            _ => {}
        }
    }
}

/// Makes the field at `path` of `body` a leaf the matcher sees: `true` when it holds a value somewhere, absent
/// when it holds none (`[]`, `{}`). Nothing else of the pattern looks below a field it asks `exists` of.
fn containers_as_leaves(body: &mut Value, path: &[String]) {
    let (Some(key), rest) = (path.first(), path.get(1..).unwrap_or_default()) else { return };
    match body {
        Value::Array(items) => items.iter_mut().for_each(|item| containers_as_leaves(item, path)),
        Value::Object(fields) if rest.is_empty() => {
            let Some(value) = fields.get_mut(key) else { return };
            if matches!(value, Value::Object(_)) || value.as_array().is_some_and(|a| a.iter().any(is_container)) {
                if has_leaf(value) {
                    *value = Value::Bool(true);
                } else {
                    fields.remove(key);
                }
            }
        }
        Value::Object(fields) => {
            if let Some(value) = fields.get_mut(key) {
                containers_as_leaves(value, rest);
            }
        }
        _ => {}
    }
}

fn is_container(value: &Value) -> bool {
    value.is_object() || value.is_array()
}

fn has_leaf(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.values().any(has_leaf),
        Value::Array(items) => items.iter().any(has_leaf),
        _ => true,
    }
}

/// The filters of a set of webhooks in a few matchers, keyed by each webhook's position: one pass of each over a
/// body tells which of its webhooks the body passes.
#[derive(Default)]
pub struct FilterSet {
    matchers: Vec<Quamina<usize>>,
    filtered: Vec<bool>,
    /// Filters that ask `exists` of a field, matched one by one (see [`EventFilter::matches`]).
    alone: Vec<(usize, EventFilter)>,
}

/// The values and operators one matcher holds at most, unless one pattern alone weighs more: below quamina 0.7's
/// 256 transitions per state, whatever the patterns (a thousand one-field patterns in one matcher reach it). A
/// heavier pattern has a matcher of its own, where its shape (`pattern`) keeps every state below 17 ways out.
const MATCHER_WEIGHT: usize = 128;

/// The verdicts on the last body a [`FilterSet`] read: the webhooks of one event mostly receive the same body.
#[derive(Default)]
pub struct FilterMemo {
    body: Option<String>,
    passing: Vec<bool>,
}

impl FilterSet {
    /// The set of `filters`, by position (`None`: a webhook without a filter, which every body passes).
    pub fn new<'a>(filters: impl ExactSizeIterator<Item = Option<&'a EventFilter>>) -> FilterSet {
        let mut set = FilterSet { matchers: Vec::new(), filtered: vec![false; filters.len()], alone: Vec::new() };
        let mut in_last = MATCHER_WEIGHT;
        for (position, filter) in filters.enumerate() {
            let Some(filter) = filter else { continue };
            if !filter.exists.is_empty() {
                set.filtered[position] = true;
                set.alone.push((position, filter.clone()));
                continue;
            }
            if in_last + filter.weight > MATCHER_WEIGHT {
                set.matchers.push(Quamina::new());
                in_last = 0;
            }
            let Some(matcher) = set.matchers.last_mut() else { continue };
            // The pattern compiled alone when the filter was made, so it compiles here.
            set.filtered[position] = matcher.add_pattern(position, &filter.pattern.to_string()).is_ok();
            in_last += filter.weight;
        }
        set
    }

    /// Whether `body` passes the filter of the webhook at `position`.
    pub fn passes(&self, position: usize, body: &str, memo: &mut FilterMemo) -> bool {
        if !self.filtered.get(position).copied().unwrap_or(false) {
            return true;
        }
        if memo.body.as_deref() != Some(body) {
            memo.passing = vec![false; self.filtered.len()];
            for matcher in &self.matchers {
                for matched in matcher.matches_for_event(body.as_bytes()).unwrap_or_default() {
                    memo.passing[matched] = true;
                }
            }
            for (position, filter) in &self.alone {
                memo.passing[*position] = filter.matches(body);
            }
            memo.body = Some(body.to_owned());
        }
        memo.passing[position]
    }
}

impl std::fmt::Debug for FilterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FilterSet({} filtered)", self.filtered.iter().filter(|f| **f).count())
    }
}

impl PartialEq for EventFilter {
    fn eq(&self, other: &EventFilter) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for EventFilter {}

impl std::fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventFilter({})", self.pattern)
    }
}

impl Serialize for EventFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.pattern.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EventFilter, D::Error> {
        let pattern = Value::deserialize(deserializer)?;
        EventFilter::new(&pattern).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventFilter {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventFilter".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let schema = super::pattern::schema("An event pattern (Amazon EventBridge pattern language) matched against the body this webhook would receive, {\"name\": ..., \"payload\": {...}}: a delivery is made only when it matches. Each field lists the values or operators it accepts: prefix, suffix, anything-but, exists, numeric, equals-ignore-case, wildcard. At most 8 fields an object (4 at the third level), 3 levels deep, 16 values and operators a list.");
        schemars::Schema::try_from(schema).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn filter(pattern: Value) -> EventFilter {
        EventFilter::new(&pattern).unwrap()
    }

    const BODY: &str =
        r#"{"name":"service:subscribed","payload":{"fiscalCode":"AAABBB00A00A000B","amount":42,"email":"a@b.it"}}"#;

    #[test]
    fn every_operator_the_contract_names_is_understood() {
        for (pattern, matches) in [
            (json!({"name": ["ping", "service:subscribed"]}), true),
            (json!({"payload": {"fiscalCode": [{"prefix": "AAA"}]}}), true),
            (json!({"payload": {"fiscalCode": [{"suffix": "000C"}]}}), false),
            (json!({"payload": {"fiscalCode": [{"anything-but": ["AAABBB00A00A000B"]}]}}), false),
            (json!({"payload": {"email": [{"exists": true}]}}), true),
            (json!({"payload": {"phone": [{"exists": true}]}}), false),
            (json!({"payload": {"amount": [{"numeric": [">=", 40, "<", 50]}]}}), true),
            (json!({"payload": {"amount": [{"numeric": [">", 42]}]}}), false),
            (json!({"name": [{"equals-ignore-case": "SERVICE:Subscribed"}]}), true),
            (json!({"name": [{"wildcard": "service:*"}]}), true),
        ] {
            assert_eq!(filter(pattern.clone()).matches(BODY), matches, "{pattern}");
        }
    }

    #[test]
    fn exists_holds_for_objects_and_lists_of_them_alone_or_in_a_set() {
        let errors = filter(json!({"errors": [{"exists": true}]}));
        let no_errors = filter(json!({"errors": [{"exists": false}]}));
        for (body, with_errors) in [
            (r#"{"data": null, "errors": [{"message": "denied", "path": ["user"]}]}"#, true),
            (r#"{"errors": {"code": 1}}"#, true),
            (r#"{"errors": ["flat"]}"#, true),
            (r#"{"data": {"user": {"id": 1}}, "errors": []}"#, false),
            (r#"{"data": {"user": {"id": 1}}}"#, false),
            (r#"{"data": {"user": {"id": 1}}, "errors": [{}]}"#, false),
        ] {
            assert_eq!(errors.matches(body), with_errors, "{body}");
            assert_eq!(no_errors.matches(body), !with_errors, "{body}");
        }
        let items = filter(json!({"items": {"tags": [{"exists": true}]}}));
        assert!(items.matches(r#"{"items": [{"tags": []}, {"tags": [{"k": "v"}]}]}"#));
        assert!(!items.matches(r#"{"items": [{"tags": []}]}"#));
        let set = FilterSet::new([Some(&errors), Some(&filter(json!({"data": [{"exists": true}]}))), None].into_iter());
        let mut memo = FilterMemo::default();
        let body = r#"{"errors": [{"message": "denied"}]}"#;
        assert_eq!((0..3).map(|p| set.passes(p, body, &mut memo)).collect::<Vec<_>>(), [true, false, true]);
    }

    #[test]
    fn a_pattern_that_does_not_parse_says_what_is_wrong() {
        let error = EventFilter::new(&json!({"payload": {"amount": [{"numeric": ["~", 1]}]}})).unwrap_err().to_string();
        assert!(error.contains("numeric"), "{error}");
        assert!(EventFilter::new(&json!("ping")).unwrap_err().to_string().starts_with("is not an event pattern"));
        assert!(EventFilter::new(&json!({})).is_err());
    }

    #[test]
    fn a_filter_is_stored_as_its_pattern() {
        let pattern = json!({"payload": {"fiscalCode": [{"prefix": "AAA"}]}});
        let stored = serde_json::to_value(filter(pattern.clone())).unwrap();
        assert_eq!(stored, pattern);
        let read: EventFilter = serde_json::from_value(stored).unwrap();
        assert!(read.matches(BODY));
    }

    #[test]
    fn a_set_of_filters_gives_each_webhook_its_own_verdict() {
        let filters = [
            Some(filter(json!({"payload": {"fiscalCode": [{"prefix": "AAA"}]}}))),
            None,
            Some(filter(json!({"payload": {"fiscalCode": [{"prefix": "ZZZ"}]}}))),
        ];
        let set = FilterSet::new(filters.iter().map(Option::as_ref));
        let mut memo = FilterMemo::default();
        let verdicts: Vec<bool> = (0..3).map(|i| set.passes(i, BODY, &mut memo)).collect();
        assert_eq!(verdicts, [true, true, false]);
        let other = BODY.replace("AAABBB", "ZZZBBB");
        let verdicts: Vec<bool> = (0..3).map(|i| set.passes(i, &other, &mut memo)).collect();
        assert_eq!(verdicts, [false, true, true]);
    }

    #[test]
    fn a_thousand_of_the_heaviest_patterns_on_one_field_make_a_set_that_matches() {
        let heaviest = |i: usize| {
            let values: Vec<Value> =
                (0..super::super::pattern::MAX_VALUES).map(|v| json!({"suffix": format!("{i:04}{v:02}")})).collect();
            filter(json!({"payload": {"fiscalCode": values}}))
        };
        let filters: Vec<Option<EventFilter>> = (0..1000).map(|i| Some(heaviest(i))).collect();
        let set = FilterSet::new(filters.iter().map(Option::as_ref));
        let body = json!({"name": "ping", "payload": {"fiscalCode": "AAA000715"}}).to_string();
        let mut memo = FilterMemo::default();
        let passing: Vec<usize> = (0..1000).filter(|&i| set.passes(i, &body, &mut memo)).collect();
        assert_eq!(passing, [7]);
    }

    #[test]
    fn the_heaviest_pattern_the_shape_allows_compiles_alone_and_in_a_set() {
        use super::super::pattern::{MAX_DEPTH, MAX_FIELDS, MAX_VALUES};
        let mut level = Value::Array((0..MAX_VALUES).map(|v| json!(format!("v{v}"))).collect());
        for depth in (0..MAX_DEPTH).rev() {
            level = Value::Object((0..MAX_FIELDS[depth]).map(|f| (format!("f{f}"), level.clone())).collect());
        }
        let heaviest = filter(level);
        assert_eq!(heaviest.weight, MAX_FIELDS.iter().product::<usize>() * MAX_VALUES);
        let body = json!({"f3": {"f1": {"f0": "v15"}}}).to_string();
        let set = FilterSet::new([Some(&heaviest), Some(&heaviest), None].into_iter());
        let passing: Vec<bool> = (0..3).map(|i| set.passes(i, &body, &mut FilterMemo::default())).collect();
        assert_eq!(passing, [false, false, true], "every field must match, not one");
    }

    proptest! {
        // A list of values matches exactly when one of its values does.
        #[test]
        fn a_list_matches_iff_one_of_its_values_does(values in prop::collection::vec("[a-c]{1,3}", 1..5), name in "[a-c]{1,3}") {
            let body = json!({"name": name, "payload": {}}).to_string();
            let any = filter(json!({"name": values})).matches(&body);
            let one = values.iter().any(|v| filter(json!({"name": [v]})).matches(&body));
            prop_assert_eq!(any, one);
            prop_assert_eq!(any, values.contains(&name));
        }
    }
}
