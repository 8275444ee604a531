//! The types a payload field can have: how each is validated, described in reports, and written in JSON Schema.

use crate::model::{quote, wrong_type};
use serde::Serialize;
use serde_json::{json, Value};

/// The type of one payload field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// A string with at least one character.
    NonEmptyString,
    /// An Italian fiscal code ([`FISCAL_CODE_PATTERN`]).
    FiscalCode,
    /// How a citizen handles service subscriptions: `LEGACY`, `AUTO` or `MANUAL`.
    ServicePreferencesMode,
}

/// The fiscal code pattern of the original system, kept verbatim for the schemas.
pub const FISCAL_CODE_PATTERN: &str =
    "^[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]$";

pub const SERVICE_PREFERENCES_MODES: [&str; 3] = ["LEGACY", "AUTO", "MANUAL"];

/// Why a value is not one of a field's type; its words quote the value and say what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// Not a string at all.
    #[error("{}", wrong_type(.found, .expected))]
    WrongType { found: Value, expected: &'static str },
    #[error("{} is not {expected}", quote(.found))]
    NotValid { found: Value, expected: &'static str },
}

impl FieldType {
    /// Ok when `value` is a valid value of this type, otherwise why not.
    pub fn check(self, value: &Value) -> Result<(), InvalidValue> {
        let Value::String(text) = value else {
            return Err(InvalidValue::WrongType { found: value.clone(), expected: self.expected() });
        };
        let valid = match self {
            FieldType::NonEmptyString => !text.is_empty(),
            FieldType::FiscalCode => is_fiscal_code(text),
            FieldType::ServicePreferencesMode => SERVICE_PREFERENCES_MODES.contains(&text.as_str()),
        };
        if valid {
            Ok(())
        } else {
            Err(InvalidValue::NotValid { found: value.clone(), expected: self.expected() })
        }
    }

    /// What a valid value looks like, as a phrase for reports and docs.
    pub fn expected(self) -> &'static str {
        match self {
            FieldType::NonEmptyString => "a non-empty string",
            FieldType::FiscalCode => "a valid fiscal code (e.g. \"AAABBB00A00A000B\")",
            FieldType::ServicePreferencesMode => "one of \"LEGACY\", \"AUTO\", \"MANUAL\"",
        }
    }

    /// The type's name in the documentation tables.
    pub fn label(self) -> &'static str {
        match self {
            FieldType::NonEmptyString => "non-empty string",
            FieldType::FiscalCode => "fiscal code",
            FieldType::ServicePreferencesMode => "`LEGACY`, `AUTO` or `MANUAL`",
        }
    }

    /// A valid value for a field `name` of this type, for sample events.
    pub fn example(self, name: &str) -> String {
        match self {
            FieldType::NonEmptyString => format!("example-{name}"),
            FieldType::FiscalCode => "AAABBB00A00A000B".to_owned(),
            FieldType::ServicePreferencesMode => "AUTO".to_owned(),
        }
    }

    /// The JSON Schema of a value of this type.
    pub fn json_schema(self) -> Value {
        match self {
            FieldType::NonEmptyString => json!({"type": "string", "minLength": 1}),
            FieldType::FiscalCode => json!({
                "type": "string",
                "pattern": FISCAL_CODE_PATTERN,
                "examples": ["AAABBB00A00A000B"]
            }),
            FieldType::ServicePreferencesMode => {
                json!({"type": "string", "enum": SERVICE_PREFERENCES_MODES})
            }
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

    #[test]
    fn reports_quote_the_value_and_say_what_was_expected() {
        let check = |ty: FieldType, v: Value| ty.check(&v).unwrap_err().to_string();
        assert_eq!(
            check(FieldType::FiscalCode, json!("abc")),
            "\"abc\" is not a valid fiscal code (e.g. \"AAABBB00A00A000B\")"
        );
        assert_eq!(check(FieldType::NonEmptyString, json!("")), "\"\" is not a non-empty string");
        assert_eq!(check(FieldType::NonEmptyString, json!(42)), "42 is a number, expected a non-empty string");
        assert_eq!(
            check(FieldType::ServicePreferencesMode, json!("auto")),
            "\"auto\" is not one of \"LEGACY\", \"AUTO\", \"MANUAL\""
        );
        assert_eq!(
            check(FieldType::ServicePreferencesMode, json!(null)),
            "is null, expected one of \"LEGACY\", \"AUTO\", \"MANUAL\""
        );
        for mode in SERVICE_PREFERENCES_MODES {
            assert_eq!(FieldType::ServicePreferencesMode.check(&json!(mode)), Ok(()));
        }
    }
}
