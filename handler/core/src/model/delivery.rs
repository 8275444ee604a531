//! A delivery: one public event for one webhook, the exact body it receives, and what happened to it. The same
//! value moves through every stage: `dispatch` makes it, a queue hands it over as a [`Job`], and the log keeps it
//! as a [`LogEntry`] with every [`Attempt`].

use super::{CallbackType, DeliveryId, WebhookId};
use serde::{Deserialize, Serialize};

/// One HTTP request to make, as the dispatcher accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "Stored")]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    /// The public event's name, or the callback's type.
    pub event: String,
    /// The callback it is, sent to the webhook's owner; `None` for an event, sent to the webhook's URL.
    #[serde(rename = "callbackType", default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackType>,
    /// The exact body sent, on every attempt: `{"name": ..., "payload": ...}` as JSON text.
    pub body: String,
    /// The message the delivery came from (a Service Bus `MessageId`, an API event id): the source of its id.
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The W3C trace context of the routing that made it: its attempts continue that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A delivery as queues and logs hold it, including those written by earlier versions: a job queued before
/// its id was called `id`, and a callback queued or logged before deliveries carried `callbackType`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(alias = "deliveryId")]
    id: DeliveryId,
    webhook_id: WebhookId,
    event: String,
    #[serde(rename = "callbackType", default)]
    callback: Option<CallbackType>,
    body: String,
    source_id: String,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    traceparent: Option<String>,
}

impl From<Stored> for Delivery {
    fn from(d: Stored) -> Delivery {
        // Public event names are lower case and callback types are not: the name tells only old records apart.
        let callback = d.callback.or_else(|| CallbackType::parse(&d.event));
        let Stored { id, webhook_id, event, body, source_id, correlation_id, traceparent, .. } = d;
        Delivery { id, webhook_id, event, callback, body, source_id, correlation_id, traceparent }
    }
}

/// A delivery due for its next attempt, as a queue hands it over (and, on Azure, the message of the deliveries
/// queue, in this JSON shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Attempts made before this one: the job is for attempt `attempts_made + 1`.
    #[serde(default)]
    pub attempts_made: u32,
    /// The version of the delivery's log entry this job was made from, when whoever handed it over vouches that
    /// it is the delivery's next attempt: the local queue leased it, or the message is delivered for the first
    /// time. Without one, the log is read before the attempt, so that a duplicate job sends nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_version: Option<LogVersion>,
    /// The rate-limit slot (ms since the epoch) this job reserved: it waits for it, then goes without asking
    /// the limit again (`policy::rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_slot_ms: Option<i64>,
}

#[cfg(test)]
impl Delivery {
    /// A ping of `{"n": 1}` to webhook `wh1`, for the core's tests.
    pub(crate) fn example() -> Delivery {
        Delivery {
            id: DeliveryId::parse("dlv_0123456789abcdef0123456789abcdef").unwrap_or_else(|| unreachable!()),
            webhook_id: "wh1".into(),
            event: "ping".into(),
            callback: None,
            body: r#"{"name":"ping","payload":{"n":1}}"#.into(),
            source_id: "m".into(),
            correlation_id: None,
            traceparent: None,
        }
    }
}

impl Job {
    /// The first attempt of a new delivery.
    pub fn first(delivery: Delivery, log_version: Option<LogVersion>) -> Job {
        Job { delivery, attempts_made: 0, log_version, rate_slot_ms: None }
    }

    /// Which attempt this job is for (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempts_made + 1
    }

    /// The job of the attempt after this one, made from log entry `log_version`.
    pub fn next(&self, log_version: Option<LogVersion>) -> Job {
        Job { delivery: self.delivery.clone(), attempts_made: self.attempts_made + 1, log_version, rate_slot_ms: None }
    }
}

/// An opaque version of a log entry, as its store tells them apart: the local store's row, a Cosmos DB etag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogVersion(String);

impl LogVersion {
    pub fn new(version: impl Into<String>) -> LogVersion {
        LogVersion(version.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not attempted yet.
    Pending,
    /// Attempted, failed, and due again at `nextAttemptAt`.
    Retrying,
    Succeeded,
    /// Given up: see `deadReason`.
    Dead,
    /// Not sent: its webhook was disabled when the event came (`POST /webhooks/{id}/recover` sends it).
    Skipped,
    /// Not sent: the webhook's `transform` made nothing of this event, so the webhook does not want it.
    Filtered,
}

impl Status {
    pub const ALL: [Status; 6] =
        [Status::Pending, Status::Retrying, Status::Succeeded, Status::Dead, Status::Skipped, Status::Filtered];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Retrying => "retrying",
            Status::Succeeded => "succeeded",
            Status::Dead => "dead",
            Status::Skipped => "skipped",
            Status::Filtered => "filtered",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Succeeded, dead, skipped or filtered: nothing more happens to it unless someone retries or recovers it.
    pub fn is_settled(self) -> bool {
        matches!(self, Status::Succeeded | Status::Dead | Status::Skipped | Status::Filtered)
    }
}

/// A delivery routing decided not to send, logged settled: skipped (its webhook is disabled), filtered (its
/// transform made nothing) or dead (its transform failed, `reason` says how).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsent {
    pub delivery: Delivery,
    pub status: Status,
    pub reason: Option<String>,
}

/// How the reason of a delivery its webhook's transform failed starts (`Unsent::transform_failed`).
pub const TRANSFORM_FAILED: &str = "transform ";

impl Unsent {
    pub fn skipped(delivery: Delivery) -> Unsent {
        Unsent { delivery, status: Status::Skipped, reason: None }
    }

    /// A delivery whose transform failed: dead at once, `error` saying why.
    pub fn transform_failed(delivery: Delivery, error: impl std::fmt::Display) -> Unsent {
        Unsent { delivery, status: Status::Dead, reason: Some(format!("{TRANSFORM_FAILED}{error}")) }
    }
}

/// How much of a response the attempt log keeps.
pub const RESPONSE_LOGGED: usize = 1024;

/// What the attempt log keeps of one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When the request started, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The response body: the first [`RESPONSE_LOGGED`] bytes once logged (the sender hands over more, for the
    /// success callback and `failWhen`).
    #[serde(default)]
    pub response: String,
    /// The `webhook-timestamp` the request was signed at (seconds), and its `webhook-signature`: the two
    /// headers that change from one attempt to the next (the others follow from the delivery and the webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Attempt {
    /// `HTTP 503`, or the error: what the attempt came to, in a few words.
    pub fn outcome(&self) -> String {
        match (self.status_code, &self.error) {
            (Some(code), Some(error)) => format!("HTTP {code}, {error}"),
            (Some(code), None) => format!("HTTP {code}"),
            (None, Some(error)) => error.clone(),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// How many of a webhook's deliveries stand in each status: its health over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub retrying: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub skipped: u64,
    pub filtered: u64,
}

impl DeliveryCounts {
    pub fn add(&mut self, status: Status, n: u64) {
        let count = match status {
            Status::Pending => &mut self.pending,
            Status::Retrying => &mut self.retrying,
            Status::Succeeded => &mut self.succeeded,
            Status::Dead => &mut self.dead,
            Status::Skipped => &mut self.skipped,
            Status::Filtered => &mut self.filtered,
        };
        *count += n;
    }

    pub fn total(&self) -> u64 {
        self.pending + self.retrying + self.succeeded + self.dead + self.skipped + self.filtered
    }

    /// The share of deliveries that reached the receiver among those that were sent and came to an end
    /// (succeeded or dead); `None` before any did. Skipped ones were never sent and pending ones may yet succeed.
    pub fn success_rate(&self) -> Option<f64> {
        let ended = self.succeeded + self.dead;
        (ended > 0).then(|| self.succeeded as f64 / ended as f64)
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    RetryAt { at_ms: i64 },
    Dead { reason: String },
}

impl Next {
    /// What a log keeps of it: the delivery's status, its next attempt, and why it is dead.
    pub fn columns(self) -> (Status, Option<i64>, Option<String>) {
        match self {
            Next::Succeeded => (Status::Succeeded, None, None),
            Next::RetryAt { at_ms } => (Status::Retrying, Some(at_ms), None),
            Next::Dead { reason } => (Status::Dead, None, Some(reason)),
        }
    }
}

/// A delivery with its whole attempt log: what the log keeps, and what the API shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub status: Status,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_reason: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

impl LogEntry {
    /// A delivery just accepted: pending, due at once.
    pub fn pending(delivery: Delivery, now_ms: i64) -> LogEntry {
        LogEntry {
            delivery,
            status: Status::Pending,
            created_at_ms: now_ms,
            next_attempt_at_ms: Some(now_ms),
            dead_reason: None,
            attempts: Vec::new(),
        }
    }

    /// A delivery not made, and why (`Unsent`).
    pub fn unsent(unsent: Unsent, now_ms: i64) -> LogEntry {
        LogEntry {
            status: unsent.status,
            next_attempt_at_ms: None,
            dead_reason: unsent.reason,
            ..LogEntry::pending(unsent.delivery, now_ms)
        }
    }

    /// Whether this delivery was never meant to be sent as it is logged: its webhook's transform kept it
    /// (filtered), or failed on it (dead without an attempt). Its body is the one before the transform, so
    /// sending it again would send what the transform refused or left out.
    pub fn kept_by_transform(&self) -> bool {
        self.status == Status::Filtered
            || (self.status == Status::Dead
                && self.attempts.is_empty()
                && self.dead_reason.as_deref().is_some_and(|r| r.starts_with(TRANSFORM_FAILED)))
    }

    /// Logs attempt `n` (1-based; the same `n` again replaces it and forgets the later ones) and what comes next.
    pub fn record(&mut self, n: u32, attempt: Attempt, next: Next) {
        let index = (n.max(1) - 1) as usize;
        self.attempts.truncate(index);
        self.attempts.push(attempt);
        self.settle(next);
    }

    /// Moves the delivery on without an attempt.
    pub fn settle(&mut self, next: Next) {
        (self.status, self.next_attempt_at_ms, self.dead_reason) = next.columns();
    }

    /// Due again now, keeping its attempts: a manual retry.
    pub fn reopen(&mut self, now_ms: i64) {
        self.status = if self.attempts.is_empty() { Status::Pending } else { Status::Retrying };
        self.next_attempt_at_ms = Some(now_ms);
        self.dead_reason = None;
    }

    /// The job of its next attempt.
    pub fn job(&self, log_version: Option<LogVersion>) -> Job {
        Job {
            delivery: self.delivery.clone(),
            attempts_made: self.attempts.len() as u32,
            log_version,
            rate_slot_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn delivery() -> Delivery {
        Delivery {
            id: DeliveryId::from_halves([1; 16]),
            webhook_id: "wh1".into(),
            event: "ping".into(),
            callback: None,
            body: r#"{"name":"ping","payload":{}}"#.into(),
            source_id: "m-1".into(),
            correlation_id: Some("c-1".into()),
            traceparent: None,
        }
    }

    #[test]
    fn a_job_is_one_flat_json_object() {
        let job = Job {
            delivery: delivery(),
            attempts_made: 2,
            log_version: Some(LogVersion::new("\"etag\"")),
            rate_slot_ms: Some(1_800_000_000_000),
        };
        let text = serde_json::to_value(&job).unwrap();
        assert_eq!(
            text,
            json!({"id": "dlv_01010101010101010101010101010101", "webhookId": "wh1", "event": "ping",
                   "body": r#"{"name":"ping","payload":{}}"#, "sourceId": "m-1", "correlationId": "c-1",
                   "attemptsMade": 2, "logVersion": "\"etag\"", "rateSlotMs": 1_800_000_000_000_i64})
        );
        assert_eq!(serde_json::from_value::<Job>(text.clone()).unwrap(), job);
        assert_eq!((job.attempt(), job.next(None).attempt()), (3, 4));
        assert_eq!(job.next(None).rate_slot_ms, None, "the next attempt asks the rate limit again");
        // Jobs sent before the id was called `id` read as well: a queue may hold them across an upgrade.
        let mut earlier = text;
        let id = earlier.as_object_mut().unwrap().remove("id").unwrap();
        earlier["deliveryId"] = id;
        assert_eq!(serde_json::from_value::<Job>(earlier).unwrap(), job);
    }

    #[test]
    fn a_callback_says_so_and_one_written_before_it_did_is_read_as_one() {
        let callback =
            Delivery { event: "DeliveryFailure".into(), callback: Some(CallbackType::DeliveryFailure), ..delivery() };
        let mut text = serde_json::to_value(Job::first(callback.clone(), None)).unwrap();
        assert_eq!(text["callbackType"], "DeliveryFailure");
        assert_eq!(serde_json::from_value::<Job>(text.clone()).unwrap().delivery, callback);
        text.as_object_mut().unwrap().remove("callbackType");
        assert_eq!(serde_json::from_value::<Job>(text).unwrap().delivery, callback, "queued by an earlier version");
        let event = serde_json::to_value(Job::first(delivery(), None)).unwrap();
        assert!(event.get("callbackType").is_none(), "{event}");
        assert_eq!(serde_json::from_value::<Job>(event).unwrap().delivery.callback, None);
    }

    #[test]
    fn the_success_rate_counts_only_deliveries_that_ended_after_being_sent() {
        let mut counts = DeliveryCounts::default();
        assert_eq!(counts.success_rate(), None, "nothing ended yet");
        counts.add(Status::Pending, 5);
        counts.add(Status::Skipped, 2);
        assert_eq!((counts.total(), counts.success_rate()), (7, None));
        counts.add(Status::Succeeded, 3);
        counts.add(Status::Dead, 1);
        counts.add(Status::Retrying, 4);
        assert_eq!((counts.total(), counts.success_rate()), (15, Some(0.75)));
    }

    #[test]
    fn recording_an_attempt_again_replaces_it_and_forgets_the_later_ones() {
        let attempt =
            |code| Attempt { at_ms: 1, duration_ms: 2, status_code: Some(code), error: None, ..Attempt::default() };
        let mut entry = LogEntry::pending(delivery(), 10);
        entry.record(1, attempt(503), Next::RetryAt { at_ms: 20 });
        entry.record(2, attempt(502), Next::RetryAt { at_ms: 30 });
        assert_eq!((entry.status, entry.next_attempt_at_ms, entry.attempts.len()), (Status::Retrying, Some(30), 2));
        entry.record(1, attempt(200), Next::Succeeded);
        assert_eq!((entry.status, entry.next_attempt_at_ms, entry.attempts.len()), (Status::Succeeded, None, 1));
        assert_eq!(entry.attempts[0].outcome(), "HTTP 200");
        entry.reopen(40);
        assert_eq!(
            (entry.status, entry.next_attempt_at_ms, entry.job(None).attempts_made),
            (Status::Retrying, Some(40), 1)
        );
    }
}
