//! Catalog files: the built-in one is the original table, a copy of it loads to the same catalog, a file of an
//! organisation's own events maps as its rules say, and a broken file is refused with every problem.

use dispatcher_core::events::catalog::{self, BUILT_IN};
use dispatcher_core::events::{decode, file, Catalog};
use serde_json::{json, Value};

fn load(text: &str) -> &'static Catalog {
    file::load(text).unwrap_or_else(|report| panic!("{report}")).leak()
}

fn problems(file: Value) -> Vec<String> {
    file::load(&file.to_string()).unwrap_err().problems().iter().map(ToString::to_string).collect()
}

/// What `catalog` makes of `event` (`{"name", "payload"}`), with webhooks whose attribute values are `values`.
fn mapped(catalog: &'static Catalog, event: &str, values: &[(&str, &[&str])]) -> Vec<String> {
    let owned: Vec<(String, Vec<String>)> =
        values.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect();
    let event = decode(event.as_bytes()).unwrap();
    catalog
        .public_events(&event, |a| owned.iter().find(|(k, _)| k == a).map_or(&[][..], |(_, v)| v.as_slice()))
        .map(|e| serde_json::to_string(&*e.unwrap()).unwrap())
        .collect()
}

#[test]
fn the_built_in_file_states_the_original_mapping_table() {
    let built_in = catalog::built_in();
    assert_eq!(
        serde_json::to_value(&built_in.mappings).unwrap(),
        json!([
            {"from": "ping:all", "when": null, "to": "ping", "forEach": "name", "payload": {"name": "attributes.name"}},
            {"from": "profile:completed", "when": {"payload": {"servicePreferencesMode": ["AUTO"]}},
             "to": "service:subscribed", "forEach": "serviceId",
             "payload": {"fiscalCode": "event.payload.fiscalCode", "serviceId": "attributes.serviceId"}},
            {"from": "profile:service-preferences-changed", "when": {"payload": {"servicePreferencesMode": ["AUTO"]}},
             "to": "service:subscribed", "forEach": "serviceId",
             "payload": {"fiscalCode": "event.payload.fiscalCode", "serviceId": "attributes.serviceId"}},
        ])
    );
}

#[test]
fn a_copy_of_the_built_in_file_maps_every_event_the_same_way() {
    let copy = load(BUILT_IN);
    let fc = "AAABBB00A00A000B";
    let values: &[(&str, &[&str])] = &[("name", &["wh1", "wh2"]), ("serviceId", &["S1", "S2"])];
    for event in [
        r#"{"name":"ping:all"}"#.to_owned(),
        r#"{"name":"ping","payload":{"name":"wh9"}}"#.to_owned(),
        format!(r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO"}}}}"#),
        format!(
            r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL"}}}}"#
        ),
        format!(
            r#"{{"name":"profile:service-preferences-changed","payload":{{"oldServicePreferencesMode":"MANUAL","servicePreferencesMode":"AUTO","fiscalCode":"{fc}"}}}}"#
        ),
    ] {
        assert_eq!(mapped(copy, &event, values), mapped(catalog::built_in(), &event, values), "{event}");
    }
    assert_eq!(
        mapped(
            copy,
            &format!(
                r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"AUTO"}}}}"#
            ),
            values
        ),
        [
            format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S1"}}}}"#),
            format!(r#"{{"name":"service:subscribed","payload":{{"fiscalCode":"{fc}","serviceId":"S2"}}}}"#),
        ]
    );
}

/// The process decodes with the built-in catalog; an organisation's file is decoded against by name, so its
/// events here reuse the built-in names for the incoming side.
#[test]
fn an_organisation_s_own_events_map_as_its_rules_say() {
    let own = load(
        &json!({
            "events": [
                {"name": "profile:completed", "audience": "non-public", "payload": {"properties": {
                    "fiscalCode": {"type": "string", "format": "fiscal-code"},
                    "servicePreferencesMode": {"type": "string", "enum": ["LEGACY", "AUTO", "MANUAL"]}},
                    "required": ["fiscalCode", "servicePreferencesMode"]}},
                {"name": "citizen:onboarded", "audience": "public", "payload": {"properties": {
                    "fiscalCode": {"type": "string"}, "mode": {"type": "string"}, "source": {"type": "string"}},
                    "required": ["fiscalCode"]}},
            ],
            "mappings": [{
                "from": "profile:completed",
                "when": {"payload": {"fiscalCode": [{"prefix": "AAA"}]}},
                "to": "citizen:onboarded",
                "payload": {"source": "event.name", "fiscalCode": "event.payload.fiscalCode", "mode": "event.payload.servicePreferencesMode"}
            }]
        })
        .to_string(),
    );
    let event = |fc: &str| {
        format!(r#"{{"name":"profile:completed","payload":{{"fiscalCode":"{fc}","servicePreferencesMode":"MANUAL"}}}}"#)
    };
    assert_eq!(
        mapped(own, &event("AAABBB00A00A000B"), &[]),
        [
            r#"{"name":"citizen:onboarded","payload":{"source":"profile:completed","fiscalCode":"AAABBB00A00A000B","mode":"MANUAL"}}"#
        ],
        "no forEach: one event, whatever the webhooks"
    );
    assert!(mapped(own, &event("BBBBBB00A00A000B"), &[]).is_empty(), "when does not match");
    assert_eq!(own.names(true), ["citizen:onboarded"]);
}

#[test]
fn a_broken_file_is_refused_with_every_problem_and_where_it_is() {
    assert_eq!(
        problems(json!({"events": [], "extra": 1})),
        [
            "extra: is not a key of a catalog file; known keys: $schema, description, events, mappings, enrichers",
            "events: [] is an array, expected a non-empty array of events",
        ]
    );
    let found = problems(json!({
        "events": [
            {"name": "ping", "audience": "public", "requiredAttributes": ["name", "nope"], "payload": {"properties": {
                "name": {"type": "string", "minLength": 1},
                "when": {"type": "string", "format": "date"},
                "count": {"type": "integer", "minLength": 1},
                "kind": {"type": "text"}}, "required": ["name", "gone"]}},
            {"name": "ping", "audience": "public"},
            {"name": "bad name", "audience": "secret"},
            {"name": "DeliveryFailure", "audience": "public"},
            {"name": "orphan", "audience": "non-public"},
            {"name": "source:x", "audience": "non-public", "payload": {"properties": {"v": {"type": "integer"}, "o": {"type": "string", "minLength": 1}}, "required": ["v"]}},
            {"name": "target:y", "audience": "public", "payload": {"properties": {"s": {"type": "string", "minLength": 1}}, "required": ["s"]}},
        ],
        "mappings": [
            {"from": "nope", "to": "ping"},
            {"from": "ping", "to": "source:x"},
            {"from": "source:x", "to": "target:y", "when": {"payload": {"w": ["1"]}, "other": ["x"]},
             "payload": {"s": "event.payload.v", "t": "event.payload.o"}},
            {"from": "source:x", "to": "target:y", "payload": {"s": "attributes.serviceId"}, "extra": true},
            {"from": "source:x", "to": "target:y", "forEach": "serviceId", "payload": {"s": "event.payload.o"}},
        ]
    }));
    assert_eq!(
        found,
        [
            "events[0].payload.required[1]: gone is not in properties",
            r#"events[0].payload.properties.when.format: "date" is not a named format; known: fiscal-code"#,
            "events[0].payload.properties.count.minLength: is for strings, not integer",
            r#"events[0].payload.properties.kind.type: "text" is not supported; a field is a string, integer, number, boolean, object or array"#,
            "events[0].requiredAttributes[1]: nope is not a required string field of the payload",
            r#"events[2].name: "bad name": has a character other than ASCII letters, digits and : . _ -"#,
            r#"events[2].audience: "secret" is wrong, expected "public" or "non-public""#,
            r#"events[3].name: "DeliveryFailure": is the name of a callback type"#,
            "events[1].name: ping is declared twice",
            "mappings[0].from: nope is not an event of the catalog; events: ping, ping, bad name, DeliveryFailure, orphan, source:x, target:y",
            "mappings[1].from: ping is public: rules map non-public events, a public one is delivered as it is",
            "mappings[1].to: source:x is not a public event of the catalog; public events: ping, ping, DeliveryFailure, target:y",
            "mappings[2].when.other: never matches: an event has only name and payload",
            "mappings[2].when.payload.w: never matches: w is not a field of source:x",
            "mappings[2].payload.s: event.payload.v is integer, but target:y.s is non-empty string",
            "mappings[2].payload.t: is not a field of target:y",
            "mappings[3].extra: is not a key of a mapping rule; known keys: from, when, to, forEach, payload, hydrate",
            r#"mappings[3].payload.s: "attributes.serviceId" is not a path this rule can read; it reads event.name, event.payload.v, event.payload.o"#,
            "mappings[4].payload.s: event.payload.o may be missing, but target:y.s is required",
            "events[4]: orphan is non-public and no mapping rule starts from it: it could never be delivered",
        ]
    );
    assert_eq!(
        problems(json!({
            "events": [
                {"name": "a:b", "audience": "public"},
                {"name": "a.b", "audience": "public"},
                {"name": "src", "audience": "non-public", "payload": {"properties": {
                    "mode": {"type": "string", "enum": ["AUTO", "MANUAL"]}}, "required": ["mode"]}},
            ],
            "mappings": [{"from": "src", "to": "a:b", "when": {"payload": {"mode": ["AUTOMATIC", 1, {"prefix": "A"}]}}}]
        })),
        [
            "events[1].name: a:b and a.b would share the schema file a.b.json",
            r#"mappings[0].when.payload.mode[0]: never matches: "AUTOMATIC" is not one of "AUTO", "MANUAL""#,
            r#"mappings[0].when.payload.mode[1]: never matches: 1 is a number, expected one of "AUTO", "MANUAL""#,
        ]
    );
    assert_eq!(
        problems(json!([1])),
        [r#"file: [1] is an array, expected an object {"events": [...], "mappings": [...]}"#]
    );
    assert_eq!(
        file::load("{\"events\": [").unwrap_err().problems()[0].to_string(),
        "file: is not JSON: EOF while parsing a list at line 1 column 12"
    );
}
