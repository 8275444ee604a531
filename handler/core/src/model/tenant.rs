//! Tenants: the integrators whose credentials see and change only their own webhooks, the attribute values
//! (grants) those webhooks may route by, the tokens they hold, and what a caller may do ([`Access`]).

use super::{TenantId, Webhook};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The attribute every tenant's webhook may set freely: it names the webhook for `ping`, and routes nothing else.
pub const FREE_ATTRIBUTE: &str = "name";

/// How many webhooks a tenant may hold when its configuration does not say.
pub const DEFAULT_MAX_WEBHOOKS: u32 = 25;

/// What the operator decides about a tenant. Decoded with every problem reported by `tenants::registration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Tenant", extend("additionalProperties" = false))]
pub struct TenantConfig {
    /// Who the tenant is, for people.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Per routing attribute, the values its webhooks may hold. An attribute not listed may not be set by its
    /// webhooks at all (`name` excepted: free).
    #[serde(default)]
    #[schemars(extend("examples" = [{"serviceId": ["aServiceId12345"]}],
        "additionalProperties" = {"type": "array", "items": {"type": "string", "minLength": 1}}))]
    pub grants: BTreeMap<String, Vec<String>>,
    /// The most webhooks it may hold.
    #[serde(default = "default_max_webhooks")]
    #[schemars(range(max = 10000))]
    pub max_webhooks: u32,
    /// A disabled tenant's credentials are refused and its webhooks receive nothing.
    #[serde(default)]
    pub disabled: bool,
}

fn default_max_webhooks() -> u32 {
    DEFAULT_MAX_WEBHOOKS
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: TenantId,
    #[serde(flatten)]
    pub config: TenantConfig,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Tenant {
    /// Whether the tenant's webhooks may hold `value` for `attribute`.
    pub fn grants(&self, attribute: &str, value: &str) -> bool {
        attribute == FREE_ATTRIBUTE
            || self.config.grants.get(attribute).is_some_and(|values| values.iter().any(|v| v == value))
    }

    /// The first of `attributes` outside the tenant's grants, as (attribute, value).
    pub fn ungranted<'a>(&self, attributes: &'a BTreeMap<String, String>) -> Option<(&'a str, &'a str)> {
        attributes.iter().find(|(key, value)| !self.grants(key, value)).map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Why a tenant's webhook receives nothing now, though it is enabled.
pub fn blocked(webhook: &Webhook, tenant: Option<&Tenant>) -> Option<String> {
    let id = webhook.config.tenant.as_ref()?;
    let Some(tenant) = tenant else { return Some(format!("its tenant \"{id}\" does not exist")) };
    if tenant.config.disabled {
        return Some(format!("its tenant \"{id}\" is disabled"));
    }
    let (attribute, value) = tenant.ungranted(&webhook.config.attributes)?;
    Some(format!("attribute {attribute} = {value:?} is outside the grants of its tenant \"{id}\""))
}

/// A tenant's API token (`dtk_…`), as stored: only the SHA-256 of the token, never the token. Its debug print
/// leaves the hash out too.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    /// `tok_` and 16 hex digits; also the start of the token, which is how a presented token is found.
    pub id: String,
    pub tenant: TenantId,
    pub name: String,
    /// Lower-case hex SHA-256 of the whole token.
    pub hash: String,
    pub read_only: bool,
    /// Made for a portal link: short-lived.
    #[serde(default)]
    pub portal: bool,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// When the tenant it was issued for was created: a tenant deleted and created again under the same id is
    /// another tenant, which this token does not open.
    #[serde(default)]
    pub tenant_created_at_ms: i64,
}

impl Token {
    /// Whether this token was issued for `tenant`, not for a tenant of the same id deleted before it was
    /// created. A token stored before tokens kept their tenant's creation time is judged by its own.
    pub fn issued_for(&self, tenant: &Tenant) -> bool {
        match self.tenant_created_at_ms {
            0 => self.created_at_ms >= tenant.created_at_ms,
            created => created == tenant.created_at_ms,
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("read_only", &self.read_only)
            .field("portal", &self.portal)
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("tenant_created_at_ms", &self.tenant_created_at_ms)
            .finish_non_exhaustive()
    }
}

/// Who is calling, and so what they may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The operator's key: everything.
    Operator,
    /// A tenant's token or portal link: its own webhooks only.
    Tenant(TenantAccess),
}

/// A tenant's credential, verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAccess {
    pub tenant: TenantId,
    /// The token's id (never the token).
    pub token_id: String,
    pub read_only: bool,
}

impl Access {
    /// Whether this caller may see (and, unless read-only, change) `webhook`.
    pub fn sees(&self, webhook: &Webhook) -> bool {
        match self {
            Access::Operator => true,
            Access::Tenant(access) => webhook.config.tenant.as_ref() == Some(&access.tenant),
        }
    }

    /// The tenant this caller acts for; `None` for the operator.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            Access::Operator => None,
            Access::Tenant(access) => Some(&access.tenant),
        }
    }

    pub fn read_only(&self) -> bool {
        matches!(self, Access::Tenant(TenantAccess { read_only: true, .. }))
    }
}

impl std::fmt::Display for Access {
    /// Who, for the audit log: `operator`, or `tenant acme (token tok_…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Operator => f.write_str("operator"),
            Access::Tenant(access) => write!(f, "tenant {} (token {})", access.tenant, access.token_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Secret, WebhookConfig};

    fn tenant(grants: &[(&str, &[&str])]) -> Tenant {
        let grants = grants.iter().map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect();
        let config = TenantConfig { name: "Acme".into(), grants, max_webhooks: 25, disabled: false };
        Tenant { id: "acme".into(), config, created_at_ms: 0, updated_at_ms: 0 }
    }

    fn webhook(tenant: Option<&str>, attributes: &[(&str, &str)]) -> Webhook {
        let config = WebhookConfig {
            url: "https://a.example".into(),
            subscriptions: vec!["ping".into()],
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tenant: tenant.map(TenantId::from),
            ..Default::default()
        };
        Webhook::new("wh".into(), config, Secret::from_key(&[1; 32]), 0)
    }

    #[test]
    fn a_webhook_is_blocked_by_an_ungranted_value_an_unlisted_attribute_or_its_tenant_not_name() {
        let acme = tenant(&[("serviceId", &["s1", "s2"])]);
        assert_eq!(blocked(&webhook(Some("acme"), &[("serviceId", "s2"), ("name", "anything")]), Some(&acme)), None);
        assert_eq!(
            blocked(&webhook(Some("acme"), &[("serviceId", "s3")]), Some(&acme)).as_deref(),
            Some("attribute serviceId = \"s3\" is outside the grants of its tenant \"acme\"")
        );
        assert!(blocked(&webhook(Some("acme"), &[("fiscalCode", "X")]), Some(&acme)).is_some());
        assert!(blocked(&webhook(Some("acme"), &[]), None).unwrap().contains("does not exist"));
        let disabled = Tenant { config: TenantConfig { disabled: true, ..acme.config.clone() }, ..acme.clone() };
        assert!(blocked(&webhook(Some("acme"), &[]), Some(&disabled)).unwrap().contains("disabled"));
        // The operator's own webhooks answer to no grant.
        assert_eq!(blocked(&webhook(None, &[("serviceId", "s9")]), None), None);
    }

    #[test]
    fn a_tenant_sees_its_own_webhooks_the_operator_every_one() {
        let access = Access::Tenant(TenantAccess { tenant: "acme".into(), token_id: "tok_1".into(), read_only: true });
        assert!(access.sees(&webhook(Some("acme"), &[])));
        assert!(!access.sees(&webhook(Some("other"), &[])));
        assert!(!access.sees(&webhook(None, &[])));
        assert!(Access::Operator.sees(&webhook(Some("other"), &[])));
        assert!(access.read_only() && !Access::Operator.read_only());
        assert_eq!(access.to_string(), "tenant acme (token tok_1)");
    }
}
