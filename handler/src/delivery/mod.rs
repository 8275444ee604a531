//! Delivering one webhook request: signing, sending, and deciding what comes next. Shared by local mode and
//! the Azure functions; the queue and the store around it differ, the rules do not.

pub mod outcome;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod ssrf;

use crate::store::{NewDelivery, Next, StoredWebhook};
use outcome::{classify, Response, Verdict};
use retry::RetrySchedule;
use sender::{now_ms, AttemptRecord, Request, Sender};
use std::collections::BTreeMap;

/// The delivery engine: the HTTP sender and the retry policy.
#[derive(Clone)]
pub struct Engine {
    pub sender: Sender,
    pub schedule: RetrySchedule,
}

/// One attempt, done: what the log keeps and what happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    pub record: AttemptRecord,
    pub next: Next,
    /// The receiver answered 410 Gone: disable the webhook, for this reason.
    pub disable_webhook: Option<String>,
}

impl Engine {
    /// Attempt number `n` (1-based) of `delivery` to `webhook`.
    pub async fn attempt(&self, delivery: &NewDelivery, webhook: &StoredWebhook, n: u32) -> Attempted {
        let request = Request {
            url: &webhook.config.url,
            delivery_id: delivery.id.as_str(),
            body: &delivery.body,
            headers: &webhook.config.headers,
            secrets: webhook.signing_secrets(now_ms()),
            auth: webhook.config.auth.as_ref(),
            correlation_id: delivery.correlation_id.as_deref(),
        };
        let (response, record) = self.sender.send(request).await;
        let (next, disable_webhook) = next_step(&response, n, &self.schedule, delivery.id.as_str(), record.at_ms);
        Attempted { record, next, disable_webhook }
    }

    /// Tells the webhook's owner that a delivery was given up, when the webhook has a `failureCallbackUrl`:
    /// a POST signed like a delivery, with the failed delivery's payload. `None` when there is no callback.
    pub async fn failure_callback(
        &self,
        delivery: &NewDelivery,
        webhook: &StoredWebhook,
        attempts: u32,
        status_code: Option<u16>,
    ) -> Option<AttemptRecord> {
        let url = webhook.config.failure_callback_url.as_deref()?;
        let payload: serde_json::Value = serde_json::from_slice::<serde_json::Value>(&delivery.body)
            .ok()
            .and_then(|b| b.get("payload").cloned())
            .unwrap_or_default();
        let body = serde_json::json!({
            "callbackType": "DeliveryFailure",
            "deliveryId": delivery.id,
            "webhookId": &*webhook.id,
            "eventType": delivery.event,
            "payload": payload,
            "statusCode": status_code,
            "attempts": attempts,
        })
        .to_string();
        let id = format!("{}_failure", delivery.id);
        let request = Request {
            url,
            delivery_id: &id,
            body: body.as_bytes(),
            headers: &BTreeMap::new(),
            secrets: webhook.signing_secrets(now_ms()),
            auth: webhook.config.auth.as_ref(),
            correlation_id: delivery.correlation_id.as_deref(),
        };
        Some(self.sender.send(request).await.1)
    }
}

/// The span of everything done for one delivery: its attempt, the record of it, a failure callback. Attach it
/// with [`tracing::Instrument`], never by entering it in async code: a span entered across an `.await` stays
/// entered on that thread while other tasks run there, and their log lines pile up each other's spans.
pub fn span(delivery: &NewDelivery) -> tracing::Span {
    let correlation_id = delivery.correlation_id.as_deref().unwrap_or("");
    tracing::info_span!("delivery", delivery_id = %delivery.id, webhook_id = %delivery.webhook_id, correlation_id)
}

/// What follows attempt `n` given its response: the verdict, then the retry schedule for retryable failures.
pub fn next_step(
    response: &Response,
    n: u32,
    schedule: &RetrySchedule,
    seed: &str,
    now_ms: i64,
) -> (Next, Option<String>) {
    match classify(response) {
        Verdict::Delivered => (Next::Succeeded, None),
        Verdict::Gone => {
            let reason = "HTTP 410 Gone: the receiver asked for no more deliveries; the webhook is disabled".to_owned();
            (Next::Dead { reason: reason.clone() }, Some(reason))
        }
        Verdict::Dead { reason } => (Next::Dead { reason }, None),
        Verdict::Retry { retry_after } => match schedule.delay_after(n, seed, retry_after) {
            Some(delay) => (Next::RetryAt { at_ms: now_ms + delay.as_millis() as i64 }, None),
            None => {
                (Next::Dead { reason: format!("gave up after {n} attempts; the last: {}", describe(response)) }, None)
            }
        },
    }
}

fn describe(response: &Response) -> String {
    match response {
        Response::Status { code, .. } => format!("HTTP {code}"),
        Response::Failed { error, .. } => error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retryable_failures_follow_the_schedule_until_it_runs_out() {
        let schedule: RetrySchedule = "10s,20s".parse().unwrap();
        let busy = Response::Status { code: 503, retry_after: None };
        let (next, _) = next_step(&busy, 1, &schedule, "d", 1_000_000);
        let Next::RetryAt { at_ms } = next else { panic!("{next:?}") };
        assert!((1_008_000..=1_012_000).contains(&at_ms), "{at_ms}");
        assert!(matches!(next_step(&busy, 2, &schedule, "d", 0).0, Next::RetryAt { .. }));
        assert_eq!(
            next_step(&busy, 3, &schedule, "d", 0).0,
            Next::Dead { reason: "gave up after 3 attempts; the last: HTTP 503".into() }
        );
        let timeout = Response::Failed { error: "timed out".into(), transient: true };
        assert_eq!(
            next_step(&timeout, 3, &schedule, "d", 0).0,
            Next::Dead { reason: "gave up after 3 attempts; the last: timed out".into() }
        );
        let slow_down = Response::Status { code: 429, retry_after: Some(Duration::from_secs(3600)) };
        assert_eq!(next_step(&slow_down, 1, &schedule, "d", 0).0, Next::RetryAt { at_ms: 3_600_000 });
    }

    #[test]
    fn gone_disables_and_client_errors_end_at_once() {
        let (next, disable) =
            next_step(&Response::Status { code: 410, retry_after: None }, 1, &RetrySchedule::default(), "d", 0);
        assert!(matches!(next, Next::Dead { .. }) && disable.is_some());
        let (next, disable) =
            next_step(&Response::Status { code: 400, retry_after: None }, 1, &RetrySchedule::default(), "d", 0);
        assert_eq!((next, disable), (Next::Dead { reason: "HTTP 400 is not retried".into() }, None));
        assert_eq!(
            next_step(&Response::Status { code: 204, retry_after: None }, 5, &RetrySchedule::default(), "d", 0).0,
            Next::Succeeded
        );
    }
}
