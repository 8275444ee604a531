//! The delivery job both Service Bus senders' tests send (REST and AMQP).

use dispatcher::dispatch::delivery_id;
use dispatcher::functions::jobs::DeliveryJob;

/// A ping to wh1 with a correlation id, after two attempts.
pub fn job() -> DeliveryJob {
    let body = r#"{"name":"ping","payload":{}}"#;
    DeliveryJob {
        delivery_id: delivery_id("msg-1", "wh1", body.as_bytes()),
        webhook_id: "wh1".into(),
        event: "ping".into(),
        body: body.into(),
        source_id: "msg-1".into(),
        correlation_id: Some("corr-7".into()),
        attempts_made: 2,
    }
}
