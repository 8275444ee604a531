//! One event of the catalog: its name, who sees it, and the fields of its payload.

use super::fields::FieldType;
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

/// One event of the catalog.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSpec {
    pub name: String,
    #[serde(flatten)]
    pub audience: Audience,
    pub description: String,
    /// The payload fields. Other keys a producer sends are dropped, never delivered.
    pub fields: Vec<Field>,
}

/// Who sees an event.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Audience {
    /// Delivered to webhooks subscribed to it that carry every required attribute.
    #[serde(rename_all = "camelCase")]
    Public { required_attributes: Vec<String> },
    /// Never delivered as is: the mapping table turns it into public events.
    NonPublic,
}

/// One payload field.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    pub description: String,
    /// A valid value for sample events, when the file gives one (`examples`).
    pub example: Option<serde_json::Value>,
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut field = serializer.serialize_struct("Field", 4)?;
        field.serialize_field("name", &self.name)?;
        field.serialize_field("type", &self.ty.label().replace('`', ""))?;
        field.serialize_field("required", &self.required)?;
        field.serialize_field("description", &self.description)?;
        field.end()
    }
}

impl Field {
    /// A valid value of this field for sample events.
    pub fn example(&self) -> serde_json::Value {
        self.example.clone().unwrap_or_else(|| self.ty.example(&self.name))
    }
}

impl EventSpec {
    pub fn is_public(&self) -> bool {
        matches!(self.audience, Audience::Public { .. })
    }

    /// The webhook attributes a webhook must have to receive this event (none for non-public events).
    pub fn required_attributes(&self) -> &[String] {
        match &self.audience {
            Audience::Public { required_attributes } => required_attributes,
            Audience::NonPublic => &[],
        }
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// `service:subscribed` → `service.subscribed`: colons are not allowed in file names everywhere.
pub fn file_stem(event: &str) -> String {
    event.replace(':', ".")
}
