//! Reports of what is wrong with a piece of input: every problem, each with the JSON path where it was found
//! and the offending value, so a producer or an integrator can fix everything in one go.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// One thing wrong with an input, at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Problem {
    /// Where: a JSON path such as `payload.fiscalCode` or `subscriptions[1]`; `body` for the input as a whole.
    pub path: String,
    /// What is wrong, quoting the offending value.
    pub message: String,
    /// The input has the documented shape, but what it asks cannot be done (a pattern too complex for the
    /// matcher): the API answers 422 rather than 400 when every problem is of this kind.
    #[serde(skip)]
    #[schemars(skip)]
    pub unprocessable: bool,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into(), unprocessable: false }
    }

    /// The same problem in an input nested under `parent` (`payload` under `event`: `event.payload`); a problem
    /// of the whole input (`body`) is at `parent` itself.
    pub fn under(&self, parent: &str) -> Problem {
        let path = if self.path == "body" { parent.to_owned() } else { join(parent, &self.path) };
        Problem { path, ..self.clone() }
    }

    /// A problem of the [`Problem::unprocessable`] kind.
    pub fn unprocessable(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { unprocessable: true, ..Problem::new(path, message) }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The keys of `object` (at `path`) that are not among `known`, each a problem worded
/// `is not a {noun}; known {kind}: ...` (`is not a webhook field; known fields: url, ...`).
pub fn unknown_keys<'a>(
    object: &'a serde_json::Map<String, Value>,
    path: &'a str,
    known: &'a [&str],
    noun: &'a str,
    kind: &'a str,
) -> impl Iterator<Item = Problem> + 'a {
    object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(move |key| Problem::new(join(path, key), format!("is not a {noun}; known {kind}: {}", known.join(", "))))
}

/// A merge patch (RFC 7396) naming a key that is not one of `fields`: refused even when it is null (which
/// would remove nothing), so that a misspelt field is never silently ignored. `what` names the resource.
pub fn unknown_patch_keys(patch: &Value, fields: &[&str], what: &str) -> Result<(), Report> {
    let Some(keys) = patch.as_object() else { return Ok(()) };
    Report::check(unknown_keys(keys, "", fields, &format!("{what} field"), "fields").collect())
}

/// An optional string: absent or null is `None`; anything but a string is reported at `path`.
pub fn optional_string(value: Option<&Value>, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(other) => {
            problems.push(Problem::new(path, wrong_type(other, "a string")));
            None
        }
    }
}

/// Every problem found in one input, in the order they were found. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// A report of the given problems, or `None` when there are none.
    pub fn of(problems: Vec<Problem>) -> Option<Report> {
        (!problems.is_empty()).then_some(Report { problems })
    }

    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Report {
        Report { problems: vec![Problem::new(path, message)] }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Whether the input fits its schema and only asks what cannot be done (see [`Problem::unprocessable`]).
    pub fn unprocessable(&self) -> bool {
        self.problems.iter().all(|p| p.unprocessable)
    }

    /// Ok when nothing was found, the report otherwise.
    pub fn check(problems: Vec<Problem>) -> Result<(), Report> {
        Report::of(problems).map_or(Ok(()), Err)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The offending value as compact JSON, cut short so a huge value cannot flood a report or a log line.
pub fn quote(value: &Value) -> String {
    const MAX_CHARS: usize = 80;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `42 is a number, expected a non-empty string`: what is said of a value of the wrong type.
pub fn wrong_type(value: &Value, expected: &str) -> String {
    match value {
        Value::Null => format!("is null, expected {expected}"),
        _ => format!("{} is {}, expected {expected}", quote(value), kind_of(value)),
    }
}

/// A JSON number as a whole non-negative number: `3` or `3.0` (JSON Schema's `integer` takes both).
pub fn whole(number: &serde_json::Number) -> Option<u64> {
    number
        .as_u64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f)).map(|f| f as u64))
}

/// A regular expression of the whole numbers from 1 to `max`, without leading zeros.
pub fn up_to(max: u64) -> String {
    let digits: Vec<u32> = max.to_string().chars().filter_map(|c| c.to_digit(10)).collect();
    let mut alternatives: Vec<String> = (1..digits.len()).map(|len| format!("[1-9][0-9]{{{}}}", len - 1)).collect();
    for (i, &d) in digits.iter().enumerate() {
        let low = u32::from(i == 0);
        if d > low {
            let prefix: String = digits[..i].iter().map(|d| d.to_string()).collect();
            let rest = digits.len() - i - 1;
            alternatives.push(format!("{prefix}[{low}-{}][0-9]{{{rest}}}", d - 1));
        }
    }
    alternatives.push(max.to_string());
    alternatives.join("|")
}

/// What kind of JSON value this is, for messages: "a string", "an object", ...
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `payload` + `fiscalCode` → `payload.fiscalCode`.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_lists_every_problem_with_its_path() {
        let report = Report::of(vec![
            Problem::new("name", "is missing"),
            Problem::new("payload.fiscalCode", "\"abc\" is not a valid fiscal code"),
        ])
        .unwrap();
        assert_eq!(report.to_string(), "name: is missing; payload.fiscalCode: \"abc\" is not a valid fiscal code");
        assert_eq!(Report::of(vec![]), None);
    }

    #[test]
    fn long_values_are_cut_short_when_quoted() {
        let long = Value::String("x".repeat(1000));
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), 81);
        assert!(quoted.ends_with('…'));
        assert_eq!(quote(&json!("abc")), "\"abc\"");
        assert_eq!(quote(&json!("é".repeat(100))).chars().count(), 81, "cuts on a char boundary");
    }
}
