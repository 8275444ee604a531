//! The types a payload field can have: how each is validated, described in reports, and written in JSON Schema.
//! A catalog file declares them as a small part of JSON Schema (`events::file`); named formats such as the
//! fiscal code keep the checks and the words of the original system.

use crate::model::{quote, wrong_type};
use serde_json::{json, Value};

/// The type of one payload field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Any string.
    String,
    /// A string with at least one character.
    NonEmptyString,
    /// An Italian fiscal code ([`FISCAL_CODE_PATTERN`]): the named format `fiscal-code`.
    FiscalCode,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    Integer,
    Number,
    Boolean,
    /// Any JSON object.
    Object,
    /// Any JSON array.
    Array,
}

/// The fiscal code pattern of the original system, kept verbatim for the schemas.
pub const FISCAL_CODE_PATTERN: &str =
    "^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$";

/// The named string formats a catalog file may use.
pub const FORMATS: [&str; 1] = ["fiscal-code"];

/// Why a value is not one of a field's type; its words quote the value and say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Not of the JSON type at all.
    #[error("{}", wrong_type(.found, .expected))]
    WrongType { found: Value, expected: String },
    #[error("{} is not {expected}", quote(.found))]
    NotValid { found: Value, expected: String },
}

impl FieldType {
    /// Ok when `value` is a valid value of this type, otherwise why not.
    pub fn check(self, value: &Value) -> Result<(), InvalidValue> {
        let of_json_type = match self {
            FieldType::Integer => value.is_i64() || value.is_u64(),
            FieldType::Number => value.is_number(),
            FieldType::Boolean => value.is_boolean(),
            FieldType::Object => value.is_object(),
            FieldType::Array => value.is_array(),
            _ => value.is_string(),
        };
        if !of_json_type {
            return Err(InvalidValue::WrongType { found: value.clone(), expected: self.expected() });
        }
        let text = value.as_str().unwrap_or_default();
        let valid = match self {
            FieldType::NonEmptyString => !text.is_empty(),
            FieldType::FiscalCode => is_fiscal_code(text),
            FieldType::OneOf(values) => values.contains(&text),
            _ => true,
        };
        if valid {
            Ok(())
        } else {
            Err(InvalidValue::NotValid { found: value.clone(), expected: self.expected() })
        }
    }

    /// What a valid value looks like, as a phrase for reports and docs.
    pub fn expected(self) -> String {
        match self {
            FieldType::String => "a string".to_owned(),
            FieldType::NonEmptyString => "a non-empty string".to_owned(),
            FieldType::FiscalCode => "a valid fiscal code (e.g. \"AAABBB00A00A000B\")".to_owned(),
            FieldType::OneOf(values) => {
                let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                format!("one of {}", quoted.join(", "))
            }
            FieldType::Integer => "an integer".to_owned(),
            FieldType::Number => "a number".to_owned(),
            FieldType::Boolean => "a boolean".to_owned(),
            FieldType::Object => "an object".to_owned(),
            FieldType::Array => "an array".to_owned(),
        }
    }

    /// The type's name in the documentation tables.
    pub fn label(self) -> String {
        match self {
            FieldType::NonEmptyString => "non-empty string".to_owned(),
            FieldType::FiscalCode => "fiscal code".to_owned(),
            FieldType::OneOf(values) => match values {
                [] => "nothing".to_owned(),
                [only] => format!("`{only}`"),
                [first @ .., last] => {
                    let first: Vec<String> = first.iter().map(|v| format!("`{v}`")).collect();
                    format!("{} or `{last}`", first.join(", "))
                }
            },
            other => other.json_type().to_owned(),
        }
    }

    /// A valid value for a field `name` of this type, for sample events.
    pub fn example(self, name: &str) -> Value {
        match self {
            FieldType::String | FieldType::NonEmptyString => Value::from(format!("example-{name}")),
            FieldType::FiscalCode => Value::from("AAABBB00A00A000B"),
            FieldType::OneOf(values) => values.first().map_or(Value::Null, |v| Value::from(*v)),
            FieldType::Integer | FieldType::Number => Value::from(1),
            FieldType::Boolean => Value::from(true),
            FieldType::Object => json!({}),
            FieldType::Array => json!([]),
        }
    }

    fn json_type(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Object => "object",
            FieldType::Array => "array",
            _ => "string",
        }
    }

    /// The JSON Schema of a value of this type, as the generated schemas write it: a named format as the
    /// pattern it stands for, so that any validator checks it.
    pub fn json_schema(self) -> Value {
        match self {
            FieldType::NonEmptyString => json!({"type": "string", "minLength": 1}),
            FieldType::FiscalCode => json!({
                "type": "string",
                "pattern": FISCAL_CODE_PATTERN,
                "examples": ["AAABBB00A00A000B"]
            }),
            FieldType::OneOf(values) => json!({"type": "string", "enum": values}),
            other => json!({"type": other.json_type()}),
        }
    }
}

/// Matches [`FISCAL_CODE_PATTERN`] position by position: sixteen ASCII characters, each from its class.
pub fn is_fiscal_code(text: &str) -> bool {
    const LETTER: u8 = 0;
    const DIGIT_OR_OMOCODE: u8 = 1;
    const MONTH: u8 = 2;
    #[rustfmt::skip]
    const CLASSES: [u8; 16] = [
        LETTER, LETTER, LETTER, LETTER, LETTER, LETTER,     // surname and name
        DIGIT_OR_OMOCODE, DIGIT_OR_OMOCODE,                 // year
        MONTH,                                              // month
        DIGIT_OR_OMOCODE, DIGIT_OR_OMOCODE,                 // day and sex
        LETTER, DIGIT_OR_OMOCODE, DIGIT_OR_OMOCODE, DIGIT_OR_OMOCODE, // place of birth
        LETTER,                                             // check character
    ];
    let bytes = text.as_bytes();
    bytes.len() == CLASSES.len()
        && bytes.iter().zip(CLASSES).all(|(&b, class)| match class {
            LETTER => b.is_ascii_uppercase(),
            DIGIT_OR_OMOCODE => b.is_ascii_digit() || b"LMNPQRSTUV".contains(&b),
            _ => b"ABCDEHLMPRST".contains(&b),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fiscal_codes_follow_the_original_pattern() {
        for valid in ["AAABBB00A00A000B", "RSSMRA85T10A562S", "RSSMRALMTLMALMNS"] {
            assert!(is_fiscal_code(valid), "{valid} should be valid");
        }
        for invalid in [
            "",
            "abc",
            "aaabbb00a00a000b",  // lower case
            "AAABBB00A00A000",   // 15 characters
            "AAABBB00A00A000BC", // 17 characters
            "AAABBB00F00A000B",  // F is not a month letter
            "AAABBB0XA00A000B",  // X is neither a digit nor an omocode letter
            "AAAB3B00A00A000B",  // digit among the name letters
            "AAABBB00A00A0001",  // digit as check character
            "ÀAABBB00A00A000B",  // non-ASCII
        ] {
            assert!(!is_fiscal_code(invalid), "{invalid:?} should be invalid");
        }
    }

    proptest! {
        #[test]
        fn every_string_the_pattern_generates_is_a_fiscal_code(code in FISCAL_CODE_PATTERN.trim_matches(|c| c == '^' || c == '$')) {
            prop_assert!(is_fiscal_code(&code));
        }

        #[test]
        fn changing_one_position_to_a_character_outside_its_class_is_rejected(
            code in FISCAL_CODE_PATTERN.trim_matches(|c| c == '^' || c == '$'),
            position in 0usize..16,
            replacement in "[a-z#é ]",
        ) {
            let mut chars: Vec<char> = code.chars().collect();
            chars[position] = replacement.chars().next().unwrap();
            prop_assert!(!is_fiscal_code(&chars.into_iter().collect::<String>()));
        }
    }

    const MODES: FieldType = FieldType::OneOf(&["LEGACY", "AUTO", "MANUAL"]);

    #[test]
    fn reports_quote_the_value_and_say_what_was_expected() {
        let check = |ty: FieldType, v: Value| ty.check(&v).unwrap_err().to_string();
        assert_eq!(
            check(FieldType::FiscalCode, json!("abc")),
            "\"abc\" is not a valid fiscal code (e.g. \"AAABBB00A00A000B\")"
        );
        assert_eq!(check(FieldType::NonEmptyString, json!("")), "\"\" is not a non-empty string");
        assert_eq!(check(FieldType::NonEmptyString, json!(42)), "42 is a number, expected a non-empty string");
        assert_eq!(check(MODES, json!("auto")), "\"auto\" is not one of \"LEGACY\", \"AUTO\", \"MANUAL\"");
        assert_eq!(check(MODES, json!(null)), "is null, expected one of \"LEGACY\", \"AUTO\", \"MANUAL\"");
        for mode in ["LEGACY", "AUTO", "MANUAL"] {
            assert_eq!(MODES.check(&json!(mode)), Ok(()));
        }
        assert_eq!(MODES.label(), "`LEGACY`, `AUTO` or `MANUAL`");
        assert_eq!(check(FieldType::Integer, json!(1.5)), "1.5 is a number, expected an integer");
        assert_eq!(FieldType::Integer.check(&json!(-3)), Ok(()));
        assert_eq!(check(FieldType::Boolean, json!("true")), "\"true\" is a string, expected a boolean");
    }
}
