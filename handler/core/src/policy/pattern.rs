//! The shape of an event pattern, stated once for the server and its JSON Schema: an object naming fields, each
//! a list of 1 to [`MAX_VALUES`] values and operators or a pattern for a nested object, at most
//! [`MAX_FIELDS`]`[depth]` fields at each depth. The matcher (quamina) judges what the shape lets through; the
//! shape keeps the document exact about what is refused, and bounds a pattern: at most 8 × 8 × 4 = 256 fields
//! (quamina's own limit) of 16 values each, and never more than 16 ways out of one state of its automaton
//! (quamina 0.7 panics at 256).

use serde_json::{json, Map, Value};

/// How many fields one object of a pattern may name, by its depth: `{"payload": {"address": {"city": [...]}}}`
/// is three objects deep, the most a pattern nests.
pub const MAX_FIELDS: [usize; 3] = [8, 8, 4];
/// How many objects deep a pattern may nest.
pub const MAX_DEPTH: usize = MAX_FIELDS.len();
/// How many values and operators one list may hold (and an `anything-but` list).
pub const MAX_VALUES: usize = 16;

/// The operators a list may hold, each with the JSON Schema of its operand.
fn operators() -> [(&'static str, Value); 7] {
    let comparison = json!({"enum": ["<", "<=", "=", ">", ">="]});
    let bound = json!({"type": "number"});
    [
        ("prefix", json!({"type": "string"})),
        ("suffix", json!({"type": "string"})),
        ("equals-ignore-case", json!({"type": "string"})),
        // `*` matches anything, never two in a row; `\\*` and `\\\\` are a star and a backslash.
        ("wildcard", json!({"type": "string", "pattern": "^(\\*?([^*\\\\]|\\\\[*\\\\]))*\\*?$"})),
        ("exists", json!({"type": "boolean"})),
        (
            "anything-but",
            json!({"anyOf": [{"type": "string"}, {"type": "number"},
                {"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": {"type": "string"}},
                {"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": {"type": "number"}}]}),
        ),
        (
            "numeric",
            json!({"anyOf": [
                {"type": "array", "prefixItems": [comparison, bound], "items": false, "minItems": 2},
                {"type": "array", "prefixItems": [comparison, bound, comparison, bound], "items": false, "minItems": 4}
            ]}),
        ),
    ]
}

/// What is wrong with the shape of a pattern, in words that follow the field's path.
pub fn check(pattern: &Value) -> Result<(), String> {
    check_object(pattern, "", 1)
}

fn check_object(pattern: &Value, path: &str, depth: usize) -> Result<(), String> {
    let Value::Object(fields) = pattern else { return Err(format!("{}is not an object", at(path))) };
    if depth > MAX_DEPTH {
        return Err(format!("{}nests more than {MAX_DEPTH} objects deep", at(path)));
    }
    if fields.is_empty() {
        return Err(format!("{}names no field to match", at(path)));
    }
    let most = MAX_FIELDS[depth - 1];
    if fields.len() > most {
        return Err(format!("{}names {} fields; at most {most} here", at(path), fields.len()));
    }
    for (key, value) in fields {
        let inner = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        match value {
            Value::Object(_) => check_object(value, &inner, depth + 1)?,
            Value::Array(items) if items.is_empty() => return Err(format!("at {inner}: lists nothing to match")),
            Value::Array(items) if items.len() > MAX_VALUES => {
                return Err(format!("at {inner}: lists {} values and operators; at most {MAX_VALUES}", items.len()))
            }
            Value::Array(items) => items.iter().try_for_each(|item| check_matcher(item, &inner))?,
            _ => return Err(format!("at {inner}: is not a list of values and operators, nor a nested pattern")),
        }
    }
    Ok(())
}

fn check_matcher(item: &Value, path: &str) -> Result<(), String> {
    let Value::Object(operator) = item else {
        return match item {
            Value::Array(_) => Err(format!("at {path}: a list inside a list is not a value or an operator")),
            _ => Ok(()),
        };
    };
    let known = operators();
    let names = || known.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    let (name, operand) = match operator.iter().next() {
        Some((name, operand)) if operator.len() == 1 && known.iter().any(|(n, _)| n == name) => (name, operand),
        _ => return Err(format!("at {path}: {item} is not an operator; operators: {}", names())),
    };
    let scalar = |v: &Value| v.is_string() || v.is_number();
    let comparison = |v: &Value| matches!(v.as_str(), Some("<" | "<=" | "=" | ">" | ">="));
    let fits = match name.as_str() {
        "exists" => operand.is_boolean(),
        "anything-but" => match operand {
            // Strings only or numbers only: the matcher takes no mix.
            Value::Array(values) => {
                (1..=MAX_VALUES).contains(&values.len())
                    && (values.iter().all(Value::is_string) || values.iter().all(Value::is_number))
            }
            other => scalar(other),
        },
        "numeric" => match operand.as_array().map(Vec::as_slice) {
            Some([op, bound]) => comparison(op) && bound.is_number(),
            Some([op, bound, op2, bound2]) => {
                comparison(op) && bound.is_number() && comparison(op2) && bound2.is_number()
            }
            _ => false,
        },
        "wildcard" => operand.as_str().is_some_and(wildcard),
        _ => operand.is_string(),
    };
    match fits {
        true => Ok(()),
        false => Err(format!("at {path}: {item} does not give {name} what it takes")),
    }
}

/// A wildcard the matcher takes: no `**`, and a backslash only before `*` or `\`.
fn wildcard(text: &str) -> bool {
    let (mut chars, mut star) = (text.chars(), false);
    while let Some(c) = chars.next() {
        match c {
            '*' if star => return false,
            '*' => star = true,
            '\\' if !matches!(chars.next(), Some('*' | '\\')) => return false,
            _ => star = false,
        }
    }
    true
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("at {path}: ")
    }
}

/// The JSON Schema of a pattern: the shape above, its nesting written out level by level (no recursion, so
/// that it inlines anywhere).
pub fn schema(description: &str) -> Value {
    let operator_objects: Vec<Value> = operators()
        .into_iter()
        .map(|(name, operand)| {
            json!({"type": "object", "properties": {name: operand}, "required": [name], "additionalProperties": false})
        })
        .collect();
    let mut matcher = vec![json!({"type": ["string", "number", "boolean", "null"]})];
    matcher.extend(operator_objects);
    let list = json!({"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": {"anyOf": matcher}});
    let object = |most: usize, values: Value| json!({"type": "object", "minProperties": 1, "maxProperties": most, "additionalProperties": values});
    let mut level = object(MAX_FIELDS[MAX_DEPTH - 1], list.clone());
    for depth in (0..MAX_DEPTH - 1).rev() {
        level = object(MAX_FIELDS[depth], json!({"anyOf": [list, level]}));
    }
    let mut schema: Map<String, Value> = serde_json::from_value(level).unwrap_or_default();
    schema.insert("description".into(), Value::from(description));
    schema.insert("examples".into(), json!([{"payload": {"fiscalCode": [{"prefix": "AAA"}]}}]));
    Value::Object(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_refuses_what_its_schema_refuses_and_says_where() {
        for (pattern, problem) in [
            (json!({}), "names no field to match"),
            (json!({"": []}), "at : lists nothing to match"),
            (json!({"payload": {"a": {}}}), "at payload.a: names no field to match"),
            (json!({"name": "ping"}), "at name: is not a list of values and operators, nor a nested pattern"),
            (json!({"name": [["ping"]]}), "at name: a list inside a list is not a value or an operator"),
            (json!({"name": [{"starts-with": "p"}]}), "at name: {\"starts-with\":\"p\"} is not an operator"),
            (json!({"a": {"b": {"c": {"d": [1]}}}}), "at a.b.c: nests more than 3 objects deep"),
            (json!({"n": (0..17).collect::<Vec<_>>()}), "at n: lists 17 values and operators; at most 16"),
            (
                json!({"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1, "h": 1, "i": 1}),
                "names 9 fields; at most 8",
            ),
            (json!({"n": [{"prefix": 1}]}), "at n: {\"prefix\":1} does not give prefix what it takes"),
            (json!({"n": [{"numeric": [">", 1, "<"]}]}), "at n: {\"numeric\":[\">\",1,\"<\"]} does not give numeric"),
            (json!({"n": [{"anything-but": []}]}), "at n: {\"anything-but\":[]} does not give"),
            (json!({"n": [{"wildcard": "a**b"}]}), "at n: {\"wildcard\":\"a**b\"} does not give"),
            (json!({"n": [{"wildcard": "a\\b"}]}), "at n: {\"wildcard\":\"a\\\\b\"} does not give"),
        ] {
            let error = check(&pattern).unwrap_err();
            assert!(error.starts_with(problem), "{pattern}: {error}");
        }
        check(&json!({"payload": {"fiscalCode": [{"prefix": "AAA"}, "X", 1, null, true]}})).unwrap();
        check(&json!({"a": {"b": {"c": [1]}}})).unwrap();
        check(&json!({"n": [{"wildcard": "*a*\\*b\\\\*"}]})).unwrap();
    }

    #[test]
    fn the_schema_nests_as_deep_as_the_shape_allows() {
        let schema = schema("d");
        let mut level = &schema;
        let mut depth = 1;
        while let Some(inner) = level.pointer("/additionalProperties/anyOf/1") {
            level = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(level["additionalProperties"]["minItems"], 1);
    }
}
