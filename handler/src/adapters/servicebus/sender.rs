//! One queue's sender, on `azure_core_amqp`: a connection (SASL ANONYMOUS, as Service Bus asks), a session, the
//! claims-based security `put-token` with a token for the queue (SAS, or the managed identity's JWT), and a sending link whose transfers the
//! broker settles (accepted, or rejected with its reason). Opened on the first send, shared by concurrent
//! sends, opened again after any failure and before its token expires.

use super::ServiceBusConnection;
use azure_core::credentials::Secret;
use azure_core::time::OffsetDateTime;
use azure_core_amqp::message::{AmqpMessageBody, AmqpMessageHeader, AmqpMessageId, AmqpMessageProperties};
use azure_core_amqp::{
    AmqpClaimsBasedSecurity, AmqpClaimsBasedSecurityApis, AmqpConnection, AmqpConnectionApis, AmqpMessage,
    AmqpSendOutcome, AmqpSender, AmqpSenderApis, AmqpSession, AmqpSessionApis, AmqpSymbol, AmqpTimestamp,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Everything one try of a send does (connecting included) has this long; a send tries twice at most.
const TIMEOUT: Duration = Duration::from_secs(15);
const NO_ANSWER: &str = "no answer";
/// How long a link's token is valid; the link is opened again well before.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const REOPEN_AFTER: Duration = Duration::from_secs(3000);

/// A message for a queue.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// Service Bus drops a message whose id it saw within the queue's duplicate detection window.
    pub message_id: &'a str,
    pub correlation_id: Option<&'a str>,
    /// When it becomes visible (`x-opt-scheduled-enqueue-time`), in milliseconds since the Unix epoch.
    pub scheduled_at_ms: Option<i64>,
    /// The W3C trace context the message continues: application properties `traceparent` and `Diagnostic-Id`
    /// (the Azure SDKs' name for it).
    pub traceparent: Option<&'a str>,
    /// JSON text, sent as one data section with content type `application/json`.
    pub body: &'a str,
    /// An event sent again for a later try: its own id and the try's number, as the application properties
    /// [`EVENT_ID_PROPERTY`] and [`TRY_PROPERTY`] (read back by OnIncomingEvent).
    pub retry: Option<(&'a str, u32)>,
}

/// The application property naming the event a message tries again.
pub const EVENT_ID_PROPERTY: &str = "dispatcher-event-id";
/// The application property numbering the try (2: the first retry).
pub const TRY_PROPERTY: &str = "dispatcher-try";

/// The sender of one queue.
pub struct QueueSender {
    connection: ServiceBusConnection,
    queue: String,
    link: tokio::sync::Mutex<Option<Link>>,
}

/// An open, authorised link; dropping it closes everything under it. The claims-based security links stay
/// attached with it: detaching them while the broker may still send on them is a protocol error.
struct Link {
    _connection: AmqpConnection,
    _session: AmqpSession,
    _cbs: AmqpClaimsBasedSecurity,
    sender: AmqpSender,
    renew_at: Instant,
}

impl QueueSender {
    pub fn new(connection: &ServiceBusConnection, queue: &str) -> QueueSender {
        QueueSender { connection: connection.clone(), queue: queue.to_owned(), link: tokio::sync::Mutex::default() }
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Sends one message and waits for the broker to accept it. The error says what the broker answered, and
    /// never shows the key.
    pub async fn send(&self, message: Outgoing<'_>) -> Result<(), SendError> {
        let mut link = self.link.lock().await;
        let mut outcome = self.try_send(&mut link, message).await;
        if outcome.as_ref().is_err_and(|e| e.starts_with(NO_ANSWER)) {
            // A link that stops answering was seen with a broker under load: once more, on a new connection.
            // Safe: both queues detect duplicates by MessageId, so a message that did arrive is not kept twice.
            outcome = self.try_send(&mut link, message).await;
        }
        outcome.map_err(|problem| SendError { queue: self.queue.clone(), url: self.connection.endpoint.url(), problem })
    }

    /// One try of [`QueueSender::send`], on the open link or a new one, within [`TIMEOUT`].
    async fn try_send(&self, link: &mut Option<Link>, message: Outgoing<'_>) -> Result<(), String> {
        let outcome = tokio::time::timeout(TIMEOUT, async {
            if link.as_ref().is_none_or(|l| Instant::now() >= l.renew_at) {
                *link = None;
                *link = Some(self.open().await?);
            }
            match link.as_ref() {
                Some(open) => send_on(&open.sender, message).await,
                None => Err("no link".to_owned()),
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("{NO_ANSWER} within {TIMEOUT:?}")));
        if outcome.is_err() {
            // The connection may be in any state: the next try starts afresh.
            *link = None;
        }
        outcome
    }

    async fn open(&self) -> Result<Link, String> {
        let url = azure_core::http::Url::parse(&self.connection.endpoint.url()).map_err(|e| e.to_string())?;
        let connection = AmqpConnection::new();
        let name = format!("dispatcher-{}", self.queue);
        connection.open(name.clone(), url, None).await.map_err(|e| format!("cannot connect: {e}"))?;
        let session = AmqpSession::new();
        session.begin(&connection, None).await.map_err(|e| format!("cannot begin a session: {e}"))?;
        let cbs = AmqpClaimsBasedSecurity::new(session.clone()).map_err(|e| e.to_string())?;
        cbs.attach().await.map_err(|e| format!("cannot attach to $cbs: {e}"))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let (token, kind, expiry) =
            self.connection.token(&self.queue, now + TOKEN_LIFETIME.as_secs()).await.map_err(|e| e.to_string())?;
        let token = Secret::new(token);
        let expires = OffsetDateTime::from_unix_timestamp(expiry as i64).map_err(|e| e.to_string())?;
        let audience = self.connection.audience(&self.queue);
        cbs.authorize_path(audience.clone(), Some(kind.into()), &token, expires)
            .await
            .map_err(|e| format!("put-token for {audience} refused: {e}"))?;
        // Opened again before the token expires, as the broker then closes the link.
        let lifetime = Duration::from_secs(expiry.saturating_sub(now)).mul_f32(0.8).min(REOPEN_AFTER);
        let sender = AmqpSender::new();
        sender
            .attach(&session, name, self.queue.clone(), None)
            .await
            .map_err(|e| format!("cannot attach to the queue: {e}"))?;
        Ok(Link { _connection: connection, _session: session, _cbs: cbs, sender, renew_at: Instant::now() + lifetime })
    }
}

/// A message the broker did not take: which queue, where, and what it answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("sending to the Service Bus queue {queue:?} at {url} failed: {problem}")]
pub struct SendError {
    pub queue: String,
    pub url: String,
    pub problem: String,
}

async fn send_on(sender: &AmqpSender, message: Outgoing<'_>) -> Result<(), String> {
    let properties = AmqpMessageProperties {
        message_id: Some(AmqpMessageId::String(message.message_id.to_owned())),
        correlation_id: message.correlation_id.map(|id| AmqpMessageId::String(id.to_owned())),
        content_type: Some(AmqpSymbol::from("application/json")),
        ..Default::default()
    };
    let mut builder = AmqpMessage::builder()
        .with_header(AmqpMessageHeader { durable: true, ..Default::default() })
        .with_body(AmqpMessageBody::Binary(vec![message.body.as_bytes().to_vec()]))
        .with_properties(properties);
    if let Some(traceparent) = message.traceparent {
        builder = builder
            .add_application_property("traceparent".to_owned(), traceparent.to_owned())
            .add_application_property("Diagnostic-Id".to_owned(), traceparent.to_owned());
    }
    if let Some((event_id, attempt)) = message.retry {
        builder = builder
            .add_application_property(EVENT_ID_PROPERTY.to_owned(), event_id.to_owned())
            .add_application_property(TRY_PROPERTY.to_owned(), attempt.to_string());
    }
    let mut amqp = builder.build();
    if let Some(at_ms) = message.scheduled_at_ms {
        let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
        amqp.add_message_annotation(AmqpSymbol::from("x-opt-scheduled-enqueue-time"), AmqpTimestamp(Some(at)));
    }
    match sender.send(amqp, None).await.map_err(|e| e.to_string())? {
        AmqpSendOutcome::Accepted => Ok(()),
        AmqpSendOutcome::Rejected(error) => Err(format!("the broker rejected it: {error:?}")),
        AmqpSendOutcome::Released => Err("the broker released it".to_owned()),
        AmqpSendOutcome::Modified(modified) => Err(format!("the broker modified it: {modified:?}")),
    }
}
