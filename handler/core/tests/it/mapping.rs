//! The built-in mapping table run as the original system ran it, and the shortcut for `when` patterns of plain
//! values checked against the matcher.

use dispatcher_core::events::catalog;
use dispatcher_core::events::mapping::Mapping;
use dispatcher_core::events::{body, decode, public_events};

/// The shortcut for patterns of plain values gives the matcher's verdict on every event of the table.
#[test]
fn equal_values_decide_as_the_matcher_does() {
    let rules: Vec<&Mapping> = catalog::built_in().mappings.iter().filter(|m| m.when_equal.is_some()).collect();
    assert_eq!(rules.len(), 2);
    for rule in rules {
        for mode in ["AUTO", "MANUAL", "LEGACY"] {
            let event = decode(
                format!(
                    r#"{{"name":"{}","payload":{{"fiscalCode":"AAABBB00A00A000B","servicePreferencesMode":"{mode}","oldServicePreferencesMode":"AUTO"}}}}"#,
                    rule.from
                )
                .as_bytes(),
            )
            .unwrap();
            let by_matcher = rule.when.as_ref().unwrap().matches(&body(&event));
            assert_eq!(rule.holds(&event), by_matcher, "{} {mode}", rule.from);
            assert_eq!(by_matcher, mode == "AUTO");
        }
    }
}

fn names_and_payloads(input: &str, values: &[(&str, Vec<String>)]) -> Vec<String> {
    let event = decode(input.as_bytes()).unwrap();
    public_events(&event, |a| values.iter().find(|(k, _)| *k == a).map(|(_, v)| v.as_slice()).unwrap_or(&[]))
        .map(|e| serde_json::to_string(&e.unwrap()).unwrap())
        .collect()
}

#[test]
fn the_table_maps_as_the_original_system_did() {
    let values =
        [("name", vec!["wh1".to_owned(), "wh2".to_owned()]), ("serviceId", vec!["S1".to_owned(), "S2".to_owned()])];
    let fc = "AAABBB00A00A000B";
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            r#"{"name":"ping:all"}"#.into(),
            vec![
                r#"{"name":"ping","payload":{"name":"wh1"}}"#.into(),
                r#"{"name":"ping","payload":{"name":"wh2"}}"#.into(),
            ],
        ),
        (
            format!(
                r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO"}}}}"#
            ),
            vec![
                format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S1"}}}}"#),
                format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S2"}}}}"#),
            ],
        ),
        (
            format!(
                r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL"}}}}"#
            ),
            vec![],
        ),
        (
            format!(
                r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"LEGACY"}}}}"#
            ),
            vec![],
        ),
        (
            format!(
                r#"{{"name":"profile:service-preferences-changed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO","oldServicePreferencesMode":"MANUAL"}}}}"#
            ),
            vec![
                format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S1"}}}}"#),
                format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S2"}}}}"#),
            ],
        ),
        (
            format!(
                r#"{{"name":"profile:service-preferences-changed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL","oldServicePreferencesMode":"AUTO"}}}}"#
            ),
            vec![],
        ),
        (
            r#"{"name":"ping","payload":{"name":"wh9"}}"#.into(),
            vec![r#"{"name":"ping","payload":{"name":"wh9"}}"#.into()],
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(names_and_payloads(&input, &values), expected, "{input}");
    }
    assert!(names_and_payloads(r#"{"name":"ping:all"}"#, &[]).is_empty(), "no webhooks, no pings");
}
