//! The ids of a webhook, a tenant and a delivery (`dlv_` and 32 hex digits). How a delivery's is derived is
//! `dispatch`'s business; these are the values, as URLs, stores and queue messages carry them.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// An id shared by everything that names its item: cloning one allocates nothing.
macro_rules! shared_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.into())
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id.into())
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

shared_id!(
    /// A webhook's id: chosen by whoever registers it (checked by `webhooks::registration`) or made by the
    /// dispatcher (`wh_…`). Every delivery names its webhook.
    WebhookId
);

shared_id!(
    /// A tenant's id: chosen by the operator who creates it (checked by `tenants::registration`) or made by the
    /// dispatcher (`tn_…`). Its webhooks and tokens name it.
    TenantId
);

/// A delivery's id, sent as `webhook-id`, the receiver's idempotency key; contains no `.`, as Standard Webhooks
/// requires. Held inline: making one allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId([u8; DeliveryId::LEN]);

impl DeliveryId {
    pub(crate) const PREFIX: &'static str = "dlv_";
    pub(crate) const LEN: usize = 36;

    /// An id from its 16 bytes, written as lower-case hex after the prefix.
    pub(crate) fn from_halves(halves: impl IntoIterator<Item = u8>) -> DeliveryId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [b'0'; DeliveryId::LEN];
        id[..4].copy_from_slice(DeliveryId::PREFIX.as_bytes());
        for (i, byte) in halves.into_iter().take(16).enumerate() {
            id[4 + 2 * i] = HEX[(byte >> 4) as usize];
            id[5 + 2 * i] = HEX[(byte & 0xf) as usize];
        }
        DeliveryId(id)
    }

    pub fn as_str(&self) -> &str {
        // Only built from ASCII: by `from_halves` and by `parse`, which checks.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Reads an id back (from a URL, a store, a queue message); `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<DeliveryId> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        let valid = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| DeliveryId(text.as_bytes().try_into().unwrap_or([0; Self::LEN])))
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for DeliveryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        DeliveryId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a delivery id (dlv_ and 32 hex digits)")))
    }
}

impl schemars::JsonSchema for DeliveryId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeliveryId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^dlv_[0-9a-f]{32}$",
            "description": "A delivery's id: the same on every attempt, sent as the webhook-id header.",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_only_when_they_are_ours() {
        let id = DeliveryId::from_halves([0xab; 16]);
        assert_eq!(id.as_str(), "dlv_abababababababababababababababab");
        assert_eq!(DeliveryId::parse(id.as_str()), Some(id));
        assert_eq!(serde_json::from_value::<DeliveryId>(serde_json::to_value(id).unwrap()).unwrap(), id);
        for bad in [
            "",
            "dlv_",
            "dlv_0240E71360DE434C9D3BCA3460D5C243",
            "msg_0240e71360de434c9d3bca3460d5c243",
            "dlv_0240e71360de434c9d3bca3460d5c2430",
        ] {
            assert_eq!(DeliveryId::parse(bad), None, "{bad}");
        }
        let error = serde_json::from_value::<DeliveryId>(serde_json::json!("nope")).unwrap_err().to_string();
        assert_eq!(error, "\"nope\" is not a delivery id (dlv_ and 32 hex digits)");
    }
}
