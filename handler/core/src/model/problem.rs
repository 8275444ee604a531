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
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
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
