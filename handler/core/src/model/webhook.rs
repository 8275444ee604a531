//! A webhook: where an integrator wants public events delivered (its configuration, in the original system's
//! JSON shape), and what only the dispatcher holds for it (its signing secrets, when it changed, why it was
//! disabled).

use super::{Secret, TargetAuth, TenantId, WebhookId};
use crate::policy::filter::EventFilter;
use crate::policy::health::FailureStreak;
use crate::policy::retry::RetrySchedule;
use crate::template::Transform;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::num::NonZeroU32;

/// How long a rotated-out secret keeps signing alongside the new one.
pub const SECRET_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

/// A webhook registration: where to deliver, which public events, and the attributes that route them. Decoded
/// with every problem reported by `webhooks::registration`; its documented schema is
/// `webhooks::registration::schema`, which names the public events.
// Default: only for struct updates (`..Default::default()`); an empty URL is not a registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "Webhook registration", extend("additionalProperties" = false))]
pub struct WebhookConfig {
    /// Where deliveries are POSTed: an absolute http or https URL.
    #[schemars(url, extend("examples" = ["https://example.com/webhooks/io"]))]
    pub url: String,
    /// The public events this webhook receives: an array of names, or one comma-separated string as in the original configuration.
    #[schemars(with = "SubscriptionsShape")]
    pub subscriptions: Vec<String>,
    /// Routing attributes: a public event reaches this webhook only when every payload field that is also an attribute has the attribute's value; those fields are then left out of the payload delivered.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// HTTP headers sent with every delivery (e.g. an API key for the receiver).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A disabled webhook receives nothing.
    #[serde(default)]
    pub disabled: bool,
    /// What this webhook is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where a signed `DeliveryFailure` callback is POSTed when a delivery to this webhook is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub failure_callback_url: Option<String>,
    /// How the dispatcher authenticates to the receiver, besides signing every delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<TargetAuth>,
    /// Only the deliveries whose body matches this event pattern are made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<EventFilter>,
    /// This webhook's own retry schedule, in place of the dispatcher's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<RetrySchedule>,
    /// The most deliveries a second this webhook receives; the others wait for their turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100000))]
    pub rate_limit: Option<NonZeroU32>,
    /// Where a signed `Callback` with the receiver's answer is POSTed after each successful delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub callback_url: Option<String>,
    /// How the dispatcher authenticates to `callbackUrl` and `failureCallbackUrl` (the shapes of `auth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_auth: Option<TargetAuth>,
    /// An event pattern (the language of `filter`) matched against a 2xx answer's JSON body: a match makes the attempt a failure, retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_when: Option<EventFilter>,
    /// The tenant that owns this webhook; absent for the operator's own. Set by a tenant's credential, or by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub tenant: Option<TenantId>,
    /// A template that makes the body this webhook gets from the one it would receive (`template::Transform`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
}

impl WebhookConfig {
    /// The fields a merge patch replaces whole rather than merges into: a pattern or credentials merged with
    /// another are neither (RFC 7396 would merge their objects).
    pub const REPLACED_WHOLE: [&'static str; 4] = ["filter", "failWhen", "auth", "callbackAuth"];

    /// Whether this webhook takes this public event at all (before attribute matching).
    pub fn subscribes_to(&self, event: &str) -> bool {
        self.subscriptions.iter().any(|s| s == event)
    }
}

// Only for the schema: the two shapes `subscriptions` accepts.
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum SubscriptionsShape {
    List(Vec<String>),
    /// Comma-separated names, e.g. `"ping,service:subscribed"`.
    CommaSeparated(String),
}

/// A registered webhook: its configuration and what only the dispatcher sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    #[serde(flatten)]
    pub config: WebhookConfig,
    pub secret: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Why the dispatcher disabled it (a 410 answer, or every attempt failing for too long), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at_ms: Option<i64>,
    /// Its attempts failing in a row, since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_streak: Option<FailureStreak>,
}

/// The secret a rotation replaced, which keeps signing until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub secret: Secret,
    pub expires_at_ms: i64,
}

impl Webhook {
    /// A new webhook, created at `now_ms`, signing with `secret`.
    pub fn new(id: WebhookId, config: WebhookConfig, secret: Secret, now_ms: i64) -> Webhook {
        Webhook {
            id,
            config,
            secret,
            previous_secret: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            disabled_reason: None,
            disabled_at_ms: None,
            failure_streak: None,
        }
    }

    /// The secrets that sign a delivery now: the current one, and the previous one during its overlap.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&Secret> {
        std::iter::once(&self.secret).chain(self.previous_secret(now_ms).map(|p| &p.secret)).collect()
    }

    /// Every secret it holds: its signing secrets, the credentials of `auth` and `callbackAuth`, and the values
    /// of `headers` (API keys, often). What encryption at rest seals.
    pub fn secrets_mut(&mut self) -> Vec<&mut String> {
        let mut secrets = vec![self.secret.text_mut()];
        secrets.extend(self.previous_secret.as_mut().map(|p| p.secret.text_mut()));
        let config = &mut self.config;
        secrets.extend(config.auth.iter_mut().chain(config.callback_auth.iter_mut()).flat_map(TargetAuth::secrets_mut));
        secrets.extend(config.headers.values_mut());
        secrets
    }

    /// The previous secret while it still signs.
    pub fn previous_secret(&self, now_ms: i64) -> Option<&PreviousSecret> {
        self.previous_secret.as_ref().filter(|p| p.expires_at_ms > now_ms)
    }

    /// This webhook with a new configuration; enabling it forgets why and when the dispatcher had disabled it.
    /// Its failure streak starts over when it is enabled or its target changes (URL, credentials, headers),
    /// not for an edit that leaves the target failing as before (a description, a filter).
    pub fn reconfigured(&self, config: WebhookConfig, now_ms: i64) -> Webhook {
        let mut webhook = Webhook { updated_at_ms: now_ms, ..self.clone() };
        if !config.disabled {
            (webhook.disabled_reason, webhook.disabled_at_ms) = (None, None);
        }
        let retargeted =
            self.config.url != config.url || self.config.auth != config.auth || self.config.headers != config.headers;
        if !config.disabled && (self.config.disabled || retargeted) {
            webhook.failure_streak = None;
        }
        webhook.config = config;
        webhook
    }

    /// This webhook disabled by the dispatcher at `now_ms`, for `reason`.
    pub fn disabled(&self, reason: String, now_ms: i64) -> Webhook {
        let mut disabled = self.clone();
        disabled.config.disabled = true;
        disabled.disabled_reason = Some(reason);
        disabled.disabled_at_ms = Some(now_ms);
        disabled.updated_at_ms = now_ms;
        disabled
    }

    /// This webhook signing with `fresh` from now on; the current secret keeps signing for [`SECRET_OVERLAP_MS`].
    pub fn rotated(&self, fresh: Secret, now_ms: i64) -> Webhook {
        let previous = PreviousSecret { secret: self.secret.clone(), expires_at_ms: now_ms + SECRET_OVERLAP_MS };
        Webhook { secret: fresh, previous_secret: Some(previous), updated_at_ms: now_ms, ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> Webhook {
        let config =
            WebhookConfig { url: "https://a.example".into(), subscriptions: vec!["ping".into()], ..Default::default() };
        Webhook::new("wh".into(), config, Secret::from_key(&[1; 32]), 1_000)
    }

    #[test]
    fn a_rotated_secret_signs_alongside_the_new_one_for_a_day() {
        let rotated = webhook().rotated(Secret::from_key(&[2; 32]), 5_000);
        assert_eq!(rotated.signing_secrets(5_000).len(), 2);
        assert_eq!(rotated.signing_secrets(5_000 + SECRET_OVERLAP_MS - 1)[1], &Secret::from_key(&[1; 32]));
        assert_eq!(rotated.signing_secrets(5_000 + SECRET_OVERLAP_MS), [&Secret::from_key(&[2; 32])]);
        assert_eq!((rotated.created_at_ms, rotated.updated_at_ms), (1_000, 5_000));
    }

    #[test]
    fn enabling_a_disabled_webhook_forgets_why_it_was_disabled() {
        let disabled = webhook().disabled("HTTP 410".into(), 2_000);
        assert!(disabled.config.disabled);
        let still = disabled.reconfigured(disabled.config.clone(), 3_000);
        assert_eq!(still.disabled_reason.as_deref(), Some("HTTP 410"));
        let mut enabled_config = disabled.config.clone();
        enabled_config.disabled = false;
        let enabled = disabled.reconfigured(enabled_config, 3_000);
        assert_eq!((enabled.disabled_reason, enabled.updated_at_ms), (None, 3_000));
    }

    #[test]
    fn a_failure_streak_starts_over_when_enabled_or_sent_elsewhere_not_for_an_edit() {
        let mut failing = webhook();
        failing.failure_streak = Some(FailureStreak { since_ms: 1_000, failed: 2 });
        let mut described = failing.config.clone();
        described.description = Some("the CRM".into());
        assert_eq!(failing.reconfigured(described, 2_000).failure_streak, failing.failure_streak);
        let mut moved = failing.config.clone();
        moved.url = "https://b.example".into();
        assert_eq!(failing.reconfigured(moved, 2_000).failure_streak, None);
        let mut rekeyed = failing.config.clone();
        rekeyed.headers.insert("x-api-key".into(), "new".into());
        assert_eq!(failing.reconfigured(rekeyed, 2_000).failure_streak, None);
        let disabled = failing.disabled("failing".into(), 2_000);
        let mut enabled = disabled.config.clone();
        enabled.disabled = false;
        assert_eq!(disabled.reconfigured(enabled, 3_000).failure_streak, None);
    }
}
