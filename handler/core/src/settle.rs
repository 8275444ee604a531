//! What happens around an attempt, decided as data: whether a job is attempted at all, and what follows the
//! attempt (how to record it, when to retry, whether to disable the webhook, which callback to send). The
//! service carries these decisions out, the same way whatever the runtime.

use crate::model::{Attempt, Delivery, Job, Next, Status, Webhook};
use crate::policy::filter::EventFilter;
use crate::policy::outcome::{classify, Response, Verdict};
use crate::policy::retry::RetrySchedule;

/// What the log says of a delivery when a job comes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logged {
    pub status: Status,
    /// Attempts logged so far.
    pub attempts: u32,
}

/// Whether a job is attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Attempt,
    /// Send nothing and complete the job: it is a duplicate (a queue delivers at least once).
    Duplicate {
        why: String,
    },
    /// Its webhook was deleted or disabled meanwhile: the delivery ends dead without an attempt.
    Drop {
        reason: String,
    },
}

/// Why a delivery ends without an attempt when its webhook is gone.
pub const WEBHOOK_GONE: &str = "the webhook was deleted or disabled before the delivery could be made";

/// Admits `job` to an attempt, given its webhook (`None`: deleted) and, when the log was read, its entry
/// (`None` there: not logged yet). A job whose delivery is settled, or whose attempt the log has already, is a
/// duplicate: a redelivered message must not send twice.
pub fn admit(job: &Job, webhook: Option<&Webhook>, logged: Option<Logged>) -> Admission {
    let id = job.delivery.id;
    if let Some(logged) = logged {
        if logged.status.is_settled() {
            return Admission::Duplicate { why: format!("delivery {id} is {} already", logged.status.as_str()) };
        }
        if logged.attempts > job.attempts_made {
            let (n, logged) = (job.attempt(), logged.attempts);
            return Admission::Duplicate {
                why: format!("attempt {n} of delivery {id} is made already ({logged} logged)"),
            };
        }
    }
    let callback = job.delivery.callback;
    match (webhook, callback) {
        // A callback tells the owner of a disabled webhook too (that it was disabled, for one).
        (Some(webhook), Some(kind)) if kind.url(&webhook.config).is_none() => {
            Admission::Drop { reason: kind.url_gone() }
        }
        (Some(_), Some(_)) => Admission::Attempt,
        (Some(webhook), None) if !webhook.config.disabled => Admission::Attempt,
        _ => Admission::Drop { reason: WEBHOOK_GONE.to_owned() },
    }
}

/// What a 2xx answer's body says, when the webhook has a `failWhen` pattern: a JSON body that matches it makes
/// the attempt a failure, retried, recorded with [`FAILED_BY_FAIL_WHEN`] beside its status and body.
pub fn judge(response: Response, attempt: &mut Attempt, fail_when: Option<&EventFilter>) -> Response {
    let delivered = matches!(response, Response::Status { code: 200..=299, .. });
    match fail_when {
        Some(pattern) if delivered && pattern.matches(&attempt.response) => {
            attempt.error = Some(FAILED_BY_FAIL_WHEN.to_owned());
            Response::Failed { error: FAILED_BY_FAIL_WHEN.to_owned(), transient: true }
        }
        _ => response,
    }
}

/// The error of an attempt whose answer matched the webhook's `failWhen`.
pub const FAILED_BY_FAIL_WHEN: &str = "failed by failWhen";

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub next: Next,
    /// The receiver answered 410 Gone: disable the webhook, for this reason.
    pub disable_webhook: Option<String>,
}

impl Decision {
    /// Given up: the owner hears of it through the failure callback.
    pub fn is_dead(&self) -> bool {
        matches!(self.next, Next::Dead { .. })
    }
}

/// What follows attempt `n` (1-based) of `delivery` given its response at `now_ms`: the verdict, then the retry
/// schedule for retryable failures, its jitter seeded by the delivery id. A callback URL answering 410 does not
/// disable the webhook.
pub fn after_attempt(
    response: &Response,
    n: u32,
    schedule: &RetrySchedule,
    delivery: &Delivery,
    now_ms: i64,
) -> Decision {
    let seed = delivery.id.as_str();
    let (next, disable_webhook) = match classify(response) {
        Verdict::Delivered => (Next::Succeeded, None),
        Verdict::Gone if delivery.callback.is_some() => {
            (Next::Dead { reason: "HTTP 410 is not retried".to_owned() }, None)
        }
        Verdict::Gone => {
            let reason = "HTTP 410 Gone: the receiver asked for no more deliveries; the webhook is disabled".to_owned();
            (Next::Dead { reason: reason.clone() }, Some(reason))
        }
        Verdict::Dead { reason } => (Next::Dead { reason }, None),
        Verdict::Retry { retry_after } => match schedule.delay_after(n, seed, retry_after) {
            Some(delay) => (Next::RetryAt { at_ms: now_ms + delay.as_millis() as i64 }, None),
            None => {
                (Next::Dead { reason: format!("gave up after {n} attempts; the last: {}", response.describe()) }, None)
            }
        },
    };
    Decision { next, disable_webhook }
}

/// Why a delivery is dead when Service Bus dead-lettered its job itself (`DeadLetterReason`, and
/// `DeadLetterErrorDescription` when it gave one).
pub fn dead_lettered(cause: Option<&str>, description: Option<&str>) -> String {
    let cause = cause.filter(|c| !c.is_empty()).unwrap_or("no reason given");
    match description.filter(|d| !d.is_empty()) {
        Some(description) => format!("Service Bus dead-lettered the delivery job: {cause} ({description})"),
        None => format!("Service Bus dead-lettered the delivery job: {cause}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Secret, WebhookConfig};
    use std::time::Duration;

    fn webhook(disabled: bool, callback: Option<&str>) -> Webhook {
        let config = WebhookConfig {
            url: "https://a.example".into(),
            subscriptions: vec!["ping".into()],
            disabled,
            failure_callback_url: callback.map(str::to_owned),
            ..Default::default()
        };
        Webhook::new("wh1".into(), config, Secret::from_key(&[1; 32]), 0)
    }

    fn job(attempts_made: u32) -> Job {
        Job { delivery: Delivery::example(), attempts_made, log_version: None, rate_slot_ms: None }
    }

    #[test]
    fn duplicates_send_nothing_and_a_gone_webhook_drops_the_delivery() {
        let live = webhook(false, None);
        let logged = |status, attempts| Some(Logged { status, attempts });
        assert_eq!(admit(&job(0), Some(&live), None), Admission::Attempt, "not read, or not logged yet");
        assert_eq!(admit(&job(1), Some(&live), logged(Status::Retrying, 1)), Admission::Attempt);
        let Admission::Duplicate { why } = admit(&job(0), Some(&live), logged(Status::Succeeded, 1)) else { panic!() };
        assert_eq!(why, "delivery dlv_0123456789abcdef0123456789abcdef is succeeded already");
        let Admission::Duplicate { why } = admit(&job(1), Some(&live), logged(Status::Retrying, 2)) else { panic!() };
        assert_eq!(why, "attempt 2 of delivery dlv_0123456789abcdef0123456789abcdef is made already (2 logged)");
        assert!(matches!(admit(&job(2), Some(&live), logged(Status::Dead, 2)), Admission::Duplicate { .. }));
        let dropped = Admission::Drop { reason: WEBHOOK_GONE.into() };
        assert_eq!(admit(&job(0), None, None), dropped);
        assert_eq!(admit(&job(0), Some(&webhook(true, None)), logged(Status::Pending, 0)), dropped);
    }

    #[test]
    fn retryable_failures_follow_the_schedule_until_it_runs_out() {
        let schedule: RetrySchedule = "10s,20s".parse().unwrap();
        let busy = Response::Status { code: 503, retry_after: None };
        let Next::RetryAt { at_ms } = after_attempt(&busy, 1, &schedule, &job(0).delivery, 1_000_000).next else {
            panic!()
        };
        assert!((1_008_000..=1_012_000).contains(&at_ms), "{at_ms}");
        assert!(matches!(after_attempt(&busy, 2, &schedule, &job(0).delivery, 0).next, Next::RetryAt { .. }));
        assert_eq!(
            after_attempt(&busy, 3, &schedule, &job(0).delivery, 0).next,
            Next::Dead { reason: "gave up after 3 attempts; the last: HTTP 503".into() }
        );
        let timeout = Response::Failed { error: "timed out".into(), transient: true };
        assert_eq!(
            after_attempt(&timeout, 3, &schedule, &job(0).delivery, 0).next,
            Next::Dead { reason: "gave up after 3 attempts; the last: timed out".into() }
        );
        let slow_down = Response::Status { code: 429, retry_after: Some(Duration::from_secs(3600)) };
        assert_eq!(
            after_attempt(&slow_down, 1, &schedule, &job(0).delivery, 0).next,
            Next::RetryAt { at_ms: 3_600_000 }
        );
    }

    #[test]
    fn gone_disables_the_webhook_and_client_errors_end_at_once() {
        let gone = after_attempt(
            &Response::Status { code: 410, retry_after: None },
            1,
            &RetrySchedule::default(),
            &job(0).delivery,
            0,
        );
        assert!(gone.is_dead() && gone.disable_webhook.is_some());
        let refused = after_attempt(
            &Response::Status { code: 400, retry_after: None },
            1,
            &RetrySchedule::default(),
            &job(0).delivery,
            0,
        );
        assert_eq!(
            refused,
            Decision { next: Next::Dead { reason: "HTTP 400 is not retried".into() }, disable_webhook: None }
        );
        let ok = after_attempt(
            &Response::Status { code: 204, retry_after: None },
            5,
            &RetrySchedule::default(),
            &job(0).delivery,
            0,
        );
        assert_eq!(ok.next, Next::Succeeded);
    }

    #[test]
    fn callbacks_reach_disabled_webhooks_and_a_410_from_one_disables_nothing() {
        let failure = crate::callback::failure(&job(0).delivery, &webhook(true, Some("https://a.example/f")), 3, None);
        let callback = Job::first(failure.unwrap(), None);
        assert_eq!(admit(&callback, Some(&webhook(true, Some("https://a.example/f"))), None), Admission::Attempt);
        assert_eq!(
            admit(&callback, Some(&webhook(false, None)), None),
            Admission::Drop { reason: "the webhook has no failureCallbackUrl any more".into() }
        );
        assert_eq!(admit(&callback, None, None), Admission::Drop { reason: WEBHOOK_GONE.into() });
        let gone = Response::Status { code: 410, retry_after: None };
        let decision = after_attempt(&gone, 1, &RetrySchedule::default(), &callback.delivery, 0);
        assert_eq!(
            decision,
            Decision { next: Next::Dead { reason: "HTTP 410 is not retried".into() }, disable_webhook: None }
        );
    }

    #[test]
    fn an_answer_matching_fail_when_is_a_failure_with_its_body_kept() {
        let pattern = EventFilter::new(&serde_json::json!({"errors": [{"exists": true}]})).unwrap();
        let ok = Response::Status { code: 200, retry_after: None };
        let attempt = |body: &str| Attempt {
            at_ms: 0,
            duration_ms: 1,
            status_code: Some(200),
            error: None,
            response: body.into(),
            ..Attempt::default()
        };
        let mut failed = attempt(r#"{"data": null, "errors": [{"message": "denied"}]}"#);
        let judged = judge(ok.clone(), &mut failed, Some(&pattern));
        assert_eq!(judged, Response::Failed { error: FAILED_BY_FAIL_WHEN.into(), transient: true });
        assert_eq!((failed.error.as_deref(), failed.status_code), (Some("failed by failWhen"), Some(200)));
        assert!(failed.response.contains("denied"));
        for body in [r#"{"data": {"ok": true}}"#, "not json", ""] {
            let mut fine = attempt(body);
            assert_eq!(judge(ok.clone(), &mut fine, Some(&pattern)), ok, "{body}");
            assert_eq!(fine.error, None);
        }
        let busy = Response::Status { code: 503, retry_after: None };
        assert_eq!(judge(busy.clone(), &mut failed.clone(), Some(&pattern)), busy, "only 2xx answers are judged");
        assert_eq!(judge(ok.clone(), &mut failed.clone(), None), ok);
    }

    #[test]
    fn service_bus_dead_letter_reasons_are_told() {
        assert_eq!(
            dead_lettered(Some("MaxDeliveryCountExceeded"), Some("10 attempts")),
            "Service Bus dead-lettered the delivery job: MaxDeliveryCountExceeded (10 attempts)"
        );
        assert_eq!(dead_lettered(None, Some("")), "Service Bus dead-lettered the delivery job: no reason given");
    }
}
