//! Attempting a delivery, in two steps that every runtime calls in turn: [`Service::attempt`] admits the job
//! (a duplicate sends nothing; a job whose webhook is gone ends its delivery; one over its webhook's rate limit
//! waits for the slot it reserved) and makes the request;
//! [`Service::settle`] records the attempt and carries out what the core decided (the retry, disabling a webhook
//! that answered 410 or failed for too long (`health.rs`), the failure callback). Local mode frees the worker's slot between the two.

use super::metrics::Outcome;
use super::versioned::Updated;
use super::{timestamp, Service, ServiceError};
use crate::ports::LogKey;
use crate::telemetry;
use dispatcher_core::callback::{self, CallbackType};
use dispatcher_core::model::{Attempt, Delivery, DeliveryId, Job, Next, Webhook, RESPONSE_LOGGED};
use dispatcher_core::policy::rate;
use dispatcher_core::request;
use dispatcher_core::settle::{self, Admission, Decision};
use std::sync::Arc;

/// What [`Service::attempt`] did with a job.
#[derive(Debug)]
pub enum Step {
    /// The request was made: record it with [`Service::settle`].
    Attempted(Box<Attempted>),
    /// Nothing was sent: the job was a duplicate.
    Duplicate { why: String },
    /// Nothing was sent: its webhook is gone, and the delivery is dead.
    Dropped { reason: String },
    /// Nothing was sent yet: the job waits in the queue for its webhook's rate-limit slot at `until_ms`.
    Deferred { until_ms: i64 },
}

impl Step {
    /// How a job that sent nothing was handled; the attempt to record (`settle`) when one was made.
    pub fn without_attempt(self, id: DeliveryId) -> Result<Handled, Box<Attempted>> {
        match self {
            Step::Attempted(attempted) => Err(attempted),
            Step::Duplicate { why } => Ok(Handled::Duplicate { id, why }),
            Step::Dropped { reason } => Ok(Handled::Dropped { id, reason }),
            Step::Deferred { until_ms } => Ok(Handled::Deferred { id, until_ms }),
        }
    }
}

/// How a job was handled, in the end: what the runtimes report (the invocation's log on Azure), told in words
/// in one place, its `Display`.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Attempt `attempt` was made and recorded (`outcome`, e.g. "HTTP 503"), and `next` follows it.
    Settled {
        id: DeliveryId,
        attempt: u32,
        outcome: String,
        next: Next,
    },
    Duplicate {
        id: DeliveryId,
        why: String,
    },
    Dropped {
        id: DeliveryId,
        reason: String,
    },
    Deferred {
        id: DeliveryId,
        until_ms: i64,
    },
    /// The queue gave the job up itself.
    DeadLettered {
        id: DeliveryId,
        reason: String,
    },
}

impl std::fmt::Display for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::Settled { id, attempt, outcome, next } => {
                write!(f, "delivery {id} attempt {attempt}: {outcome}, {}", Following(next))
            }
            Handled::Duplicate { id, why } => write!(f, "delivery {id}: nothing sent, a duplicate job: {why}"),
            Handled::Dropped { id, reason } => write!(f, "delivery {id} dropped: {reason}"),
            Handled::Deferred { id, until_ms } => {
                write!(f, "delivery {id} waits for its webhook's rate limit until {}", timestamp(*until_ms))
            }
            Handled::DeadLettered { id, reason } => write!(f, "delivery {id} dead: {reason}"),
        }
    }
}

/// What follows an attempt, in words: "delivered", "retried at <time>", "dead: <reason>".
struct Following<'a>(&'a Next);

impl std::fmt::Display for Following<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Next::Succeeded => f.write_str("delivered"),
            Next::RetryAt { at_ms } => write!(f, "retried at {}", timestamp(*at_ms)),
            Next::Dead { reason } => write!(f, "dead: {reason}"),
        }
    }
}

/// An attempt made, and what the core decided should follow it.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub job: Job,
    pub webhook: Arc<Webhook>,
    pub attempt: Attempt,
    pub decision: Decision,
}

impl Service {
    /// Admits `job` and makes its attempt. A job nobody vouched for (no `log_version`) is checked against the
    /// log first, so that a redelivered message sends nothing twice.
    pub async fn attempt(&self, mut job: Job) -> Result<Step, ServiceError> {
        let webhooks = self.webhooks.get().await?;
        let webhook = webhooks.get(&job.delivery.webhook_id).cloned();
        let logged = match job.log_version {
            Some(_) => None,
            None => self.log.logged(LogKey::of(&job.delivery)).await?.map(|(logged, version)| {
                job.log_version = Some(version);
                logged
            }),
        };
        let webhook = match (settle::admit(&job, webhook.as_deref(), logged), webhook) {
            (Admission::Attempt, Some(webhook)) => webhook,
            (Admission::Duplicate { why }, _) => {
                tracing::info!(%why, "duplicate job: nothing sent");
                return Ok(Step::Duplicate { why });
            }
            (Admission::Drop { reason }, _) => return self.drop_job(&job, reason).await,
            (Admission::Attempt, None) => return self.drop_job(&job, settle::WEBHOOK_GONE.to_owned()).await,
        };
        // Grants are checked again here: a delivery routed before its tenant's grant was narrowed is not sent.
        if let Some(blocked) = webhooks.blocked(&webhook).filter(|_| job.delivery.callback.is_none()) {
            return self.drop_job(&job, format!("not sent: {blocked}")).await;
        }
        if let Some(until_ms) = self.wait_for_slot(&job, &webhook).await? {
            return Ok(Step::Deferred { until_ms });
        }
        // `admit` saw the URL; it can only have gone since for a callback.
        let Some(request) = request::delivery(&job.delivery, &webhook, self.clock.now_ms()) else {
            let reason = job.delivery.callback.map_or(settle::WEBHOOK_GONE.to_owned(), CallbackType::url_gone);
            return self.drop_job(&job, reason).await;
        };
        let (response, mut attempt) = self.sender.send(request).await;
        let callback = job.delivery.callback;
        if callback.is_none() {
            self.metrics.attempt(job.delivery.webhook_id.as_str(), attempt.duration_ms);
        }
        let fail_when = webhook.config.fail_when.as_ref().filter(|_| callback.is_none());
        let response = settle::judge(response, &mut attempt, fail_when);
        let schedule = webhook.config.retry_schedule.as_ref().unwrap_or(&self.schedule);
        let decision = settle::after_attempt(&response, job.attempt(), schedule, &job.delivery, attempt.at_ms);
        Ok(Step::Attempted(Box::new(Attempted { job, webhook, attempt, decision })))
    }

    /// When a job over its webhook's rate limit goes instead of now: it is queued again for its slot, reserved
    /// on its first turn (or, when none could be taken, for a little later without one).
    async fn wait_for_slot(&self, job: &Job, webhook: &Webhook) -> Result<Option<i64>, ServiceError> {
        let Some(limit) = webhook.config.rate_limit.filter(|_| job.delivery.callback.is_none()) else {
            return Ok(None);
        };
        let now_ms = self.clock.now_ms();
        let slot = match job.rate_slot_ms {
            Some(slot) => Some(slot),
            None => self.rate_limits.reserve(&job.delivery.webhook_id, limit, now_ms).await?,
        };
        if slot.is_some_and(|slot| slot <= now_ms) {
            return Ok(None);
        }
        let until_ms = slot.unwrap_or(now_ms + rate::interval_ms(limit.get()));
        let waiting = Job { rate_slot_ms: slot, ..job.clone() };
        self.queue.defer(&waiting, until_ms).await?;
        tracing::debug!(until = %timestamp(until_ms), "waiting for the webhook's rate limit");
        Ok(Some(until_ms))
    }

    /// Ends the delivery of a job that cannot be attempted, dead.
    async fn drop_job(&self, job: &Job, reason: String) -> Result<Step, ServiceError> {
        tracing::warn!(%reason, "delivery dropped");
        self.log.give_up(&job.delivery, &reason, self.clock.now_ms()).await?;
        if job.delivery.callback.is_none() {
            self.count(Outcome::Dead, job.delivery.webhook_id.as_str());
        }
        Ok(Step::Dropped { reason })
    }

    /// Records an attempt and carries out what follows it; returns what was done.
    /// Settling again after a failure repeats nothing twice: the log keeps one entry per attempt, and the
    /// counters move only once every write is done.
    pub async fn settle(&self, attempted: Box<Attempted>) -> Result<Handled, ServiceError> {
        let Attempted { job, webhook, mut attempt, decision } = *attempted;
        let n = job.attempt();
        let outcome = attempt.outcome();
        let status_code = attempt.status_code;
        let handled = Handled::Settled {
            id: job.delivery.id,
            attempt: n,
            outcome: outcome.to_string(),
            next: decision.next.clone(),
        };
        let error = attempt.error.clone().unwrap_or_default();
        let is_callback = job.delivery.callback.is_some();
        // Queued before the attempt is recorded: settling again after a failure makes the same callback, which
        // the queue takes once; recorded first, a redelivered job would be a duplicate and the callback lost.
        if !is_callback {
            let callback = match (&decision.next, status_code) {
                (Next::Succeeded, Some(code)) => callback::success(&job.delivery, &webhook, code, &attempt.response),
                (Next::Dead { .. }, _) => callback::failure(&job.delivery, &webhook, n, status_code),
                _ => None,
            };
            self.call_back(callback).await?;
        }
        let logged = callback::truncated(&attempt.response, RESPONSE_LOGGED).len();
        attempt.response.truncate(logged);
        let version = self.log.log_attempt(&job, attempt, decision.next.clone()).await?;
        let next = Following(&decision.next);
        tracing::info!(attempt = n, status = ?status_code, %error, %next, "attempted");
        if let Next::RetryAt { at_ms } = &decision.next {
            self.queue.schedule(&job.next(Some(version)), *at_ms).await?;
        }
        if is_callback {
            return Ok(handled);
        }
        match (decision.disable_webhook, &decision.next) {
            (Some(reason), _) => self.disable(&webhook, reason).await?,
            (None, Next::Succeeded) => self.attempt_succeeded(&webhook).await?,
            (None, _) => self.attempt_failed(&webhook, &outcome).await?,
        }
        let outcome = match &decision.next {
            Next::Succeeded => Outcome::Delivered,
            Next::RetryAt { .. } => Outcome::Retried,
            Next::Dead { .. } => Outcome::Dead,
        };
        self.count(outcome, job.delivery.webhook_id.as_str());
        Ok(handled)
    }

    /// Service Bus gave a delivery job up itself (its delivery count ran out, or it expired): the same dead path
    /// as a delivery that ran out of attempts.
    pub async fn dead_lettered(
        &self,
        job: Job,
        cause: Option<&str>,
        description: Option<&str>,
    ) -> Result<Handled, ServiceError> {
        let reason = settle::dead_lettered(cause, description);
        let logged = self.log.get_delivery(job.delivery.id).await?;
        let last_status = logged.and_then(|entry| entry.attempts.last().and_then(|a| a.status_code));
        let is_callback = job.delivery.callback.is_some();
        let webhook = self.webhooks.get().await?.get(&job.delivery.webhook_id).cloned();
        // The callback first, as in `settle`; the counter once every write is done.
        if let Some(webhook) = webhook.filter(|_| !is_callback) {
            self.call_back(callback::failure(&job.delivery, &webhook, job.attempts_made, last_status)).await?;
        }
        self.log.give_up(&job.delivery, &reason, self.clock.now_ms()).await?;
        if !is_callback {
            self.count(Outcome::Dead, job.delivery.webhook_id.as_str());
        }
        tracing::warn!(delivery_id = %job.delivery.id, %reason, "delivery dead");
        Ok(Handled::DeadLettered { id: job.delivery.id, reason })
    }

    /// Disables a webhook that asked for no more deliveries: the webhook as stored now, not the copy the
    /// attempt was made with, so that a rotation or a PATCH made during the request is kept. Not when it is
    /// disabled already (other attempts answered 410 too), nor when its URL changed since: the 410 came from
    /// the URL it no longer has.
    async fn disable(&self, webhook: &Webhook, reason: String) -> Result<(), ServiceError> {
        let now_ms = self.clock.now_ms();
        let disabled = |fresh: &Webhook| {
            let still_gone = !fresh.config.disabled && fresh.config.url == webhook.config.url;
            Ok(still_gone.then(|| fresh.disabled(reason.clone(), now_ms)))
        };
        let now = match self.update_webhook(&webhook.id, None, disabled).await? {
            Updated::Changed(now, _) => {
                tracing::warn!(webhook_id = %webhook.id, "webhook disabled after 410 Gone");
                now
            }
            Updated::Unchanged(now, _) => now,
            Updated::Missing => return Ok(()),
        };
        self.announce_disabled(&now, webhook).await
    }

    /// The `WebhookDisabled` callback of a webhook the dispatcher disabled, made from the webhook as stored (its
    /// reason and time), so that making it again makes the same one, which the queue takes once: a settle
    /// retried after its write went through still sends it. Not for a webhook sent elsewhere since `attempted`.
    pub(super) async fn announce_disabled(&self, now: &Webhook, attempted: &Webhook) -> Result<(), ServiceError> {
        let (Some(reason), Some(at_ms)) = (&now.disabled_reason, now.disabled_at_ms) else { return Ok(()) };
        if !now.config.disabled || now.config.url != attempted.config.url {
            return Ok(());
        }
        self.call_back(callback::disabled(now, reason, &timestamp(at_ms))).await
    }

    /// Queues a callback to a webhook's owner (`dispatcher_core::callback`), when the webhook wants it: a
    /// delivery of its own, retried and logged like any.
    /// Its trace continues from the span it is made in (the attempt it tells of).
    pub(super) async fn call_back(&self, callback: Option<Delivery>) -> Result<(), ServiceError> {
        let Some(mut callback) = callback else { return Ok(()) };
        if let Some(traceparent) = telemetry::traceparent(&tracing::Span::current()) {
            callback.traceparent = Some(traceparent);
        }
        tracing::info!(callback_id = %callback.id, callback_type = %callback.event, "callback queued");
        self.submit(vec![callback], &*self.queue).await?;
        Ok(())
    }
}

/// The span of everything done for one job: its attempt, the record of it, a failure callback. Attach it with
/// [`tracing::Instrument`], never by entering it in async code: a span entered across an `.await` stays entered
/// on that thread while other tasks run there, and their log lines pile up each other's spans.
/// It continues the trace of the routing that made the delivery, and the request carries its `traceparent`.
pub fn span(job: &Job) -> tracing::Span {
    let delivery = &job.delivery;
    let correlation_id = delivery.correlation_id.as_deref().unwrap_or("");
    let span = match delivery.callback {
        None => {
            tracing::info_span!("delivery", delivery_id = %delivery.id, webhook_id = %delivery.webhook_id, correlation_id)
        }
        Some(kind) => tracing::info_span!("callback", delivery_id = %delivery.id, webhook_id = %delivery.webhook_id,
            correlation_id, callback_type = kind.as_str()),
    };
    telemetry::continue_trace(&span, delivery.traceparent.as_deref());
    span
}
