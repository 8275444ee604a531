//! The delivery job the Service Bus tests send.

use dispatcher_core::dispatch::{direct, Source};
use dispatcher_core::model::{Job, LogVersion};

/// A ping to wh1 with a correlation id, after two attempts.
pub fn job() -> Job {
    let source = Source { id: "msg-1".into(), correlation_id: Some("corr-7".into()), traceparent: None };
    let delivery = direct(&source, &"wh1".into(), "ping", r#"{"name":"ping","payload":{}}"#.into());
    Job { delivery, attempts_made: 2, log_version: Some(LogVersion::new("2:1:etag")), rate_slot_ms: None }
}
