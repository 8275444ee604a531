//! Structure-aware fuzzing of the decoders that take outside input, on the stable toolchain: proptest makes
//! arbitrary JSON (and arbitrary bytes) in the shapes the decoders expect and around them, and each decoder must
//! answer `Ok` or a specific error, never panic. `PROPTEST_CASES` sets how many inputs each target gets (256 by
//! default, in the test command; `PROPTEST_CASES=200000` for a long run). A crash found becomes a case of
//! `regressions` below.

use dispatcher_core::events::decode;
use dispatcher_core::model::WebhookConfig;
use dispatcher_core::policy::filter::{EventFilter, FilterMemo, FilterSet, PatternError};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Words the decoders know, so that inputs reach past the first check.
const WORDS: [&str; 25] = [
    "name",
    "payload",
    "ping",
    "ping:all",
    "service:subscribed",
    "profile:completed",
    "fiscalCode",
    "serviceId",
    "servicePreferencesMode",
    "AUTO",
    "url",
    "subscriptions",
    "attributes",
    "headers",
    "filter",
    "retrySchedule",
    "rateLimit",
    "prefix",
    "suffix",
    "anything-but",
    "exists",
    "numeric",
    "wildcard",
    "equals-ignore-case",
    ">=",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        proptest::sample::select(WORDS.to_vec()).prop_map(|w| json!(w)),
        "\\PC{0,12}".prop_map(Value::String),
        "[*~\\\\a-c]{0,6}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(WORDS.to_vec()), inner), 0..6).prop_map(|fields| {
                Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Map<_, _>>())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn the_event_decoder_never_panics(value in json_value(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(value.to_string().as_bytes());
        let _ = decode(&bytes);
    }

    #[test]
    fn the_registration_decoder_never_panics(value in json_value()) {
        let _ = WebhookConfig::decode(&value);
    }

    #[test]
    fn a_filter_never_panics_when_made_or_matched(pattern in json_value(), body in json_value()) {
        if let Ok(filter) = EventFilter::new(&pattern) {
            let body = body.to_string();
            let matched = filter.matches(&body);
            let set = FilterSet::new([Some(&filter), None].into_iter());
            prop_assert_eq!(set.passes(0, &body, &mut FilterMemo::default()), matched);
        }
    }
}

/// Inputs that once crashed a target, or made two of its answers disagree.
#[test]
fn regressions() {
    // A pattern that names no value matched differently alone and in a set: it is refused.
    assert_eq!(EventFilter::new(&json!({"name": {}})).unwrap_err(), PatternError::NotAPattern);
    // quamina 0.7 panicked on many patterns in one automaton; a set of them must match, not crash.
    let heavy: Vec<Value> = (0..16).map(|i| json!({"prefix": format!("p{i}")})).collect();
    let filter = EventFilter::new(&json!({"payload": {"fiscalCode": heavy}})).unwrap();
    let set = FilterSet::new(std::iter::repeat_n(Some(&filter), 300));
    assert!(set.passes(299, r#"{"payload":{"fiscalCode":"p7x"}}"#, &mut FilterMemo::default()));
}
