//! Sending to a Service Bus queue over AMQP 1.0, for the Service Bus emulator, which speaks nothing else (contract
//! §8: no TLS, `UseDevelopmentEmulator=true`). Azure itself is reached through the REST API (`servicebus.rs`).
//!
//! Only what a sender needs, as Service Bus expects it: SASL ANONYMOUS, then a CBS `put-token` on `$cbs` with a
//! SAS token for the queue, then a sending link to the queue whose transfers are settled by the broker's
//! disposition (accepted, or rejected with an error). One connection per queue, opened on first use and opened
//! again after any failure; sends on it take turns.

use super::servicebus::sas_token;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything that talks to the broker has this long to finish.
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_FRAME_SIZE: u32 = 65_536;
const SASL_HEADER: &[u8; 8] = b"AMQP\x03\x01\x00\x00";
const AMQP_HEADER: &[u8; 8] = b"AMQP\x00\x01\x00\x00";

/// A message for a queue: its properties and a body sent as one data section.
pub struct Outgoing<'a> {
    pub message_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub content_type: &'a str,
    /// `x-opt-scheduled-enqueue-time`, in milliseconds since the Unix epoch.
    pub scheduled_at_ms: Option<i64>,
    pub body: &'a [u8],
}

/// A queue of the emulator at `host:port`, reached with the key of `policy`.
pub struct AmqpSender {
    host: String,
    port: u16,
    queue: String,
    policy: String,
    key: String,
    link: tokio::sync::Mutex<Option<Link>>,
}

impl AmqpSender {
    pub fn new(host: &str, port: u16, queue: &str, policy: &str, key: &str) -> AmqpSender {
        AmqpSender {
            host: host.to_owned(),
            port,
            queue: queue.to_owned(),
            policy: policy.to_owned(),
            key: key.to_owned(),
            link: tokio::sync::Mutex::default(),
        }
    }

    /// Sends one message and waits for the broker to accept it. The error says what the broker answered.
    pub async fn send(&self, message: &Outgoing<'_>) -> Result<(), String> {
        let mut link = self.link.lock().await;
        let outcome = tokio::time::timeout(TIMEOUT, async {
            if link.is_none() {
                *link = Some(self.open().await?);
            }
            link.as_mut().expect("opened above").send(message).await
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {TIMEOUT:?}")));
        if outcome.is_err() {
            // The connection may be in any state: the next send starts afresh.
            *link = None;
        }
        // The caller names the queue.
        outcome.map_err(|e| format!("AMQP to {}:{}: {e}", self.host, self.port))
    }

    async fn open(&self) -> Result<Link, String> {
        let stream =
            TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut connection = Connection { stream, buffer: Vec::new(), next_delivery: 0 };
        connection.authenticate_anonymously(&self.host).await?;
        connection.open(&self.host).await?;
        let audience = format!("sb://{}/{}", self.host, self.queue);
        let expiry = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() + 3600;
        let token = sas_token(&audience, &self.policy, &self.key, expiry);
        connection.put_token(&audience, &token).await?;
        let credit = connection.attach(Handle::QUEUE, &format!("dispatcher-{}", self.queue), &self.queue).await?;
        Ok(Link { connection, sent: 0, credit })
    }
}

/// An authenticated connection with a sending link to the queue, on channel 0.
struct Link {
    connection: Connection,
    /// Transfers made on the link: its delivery-count.
    sent: u32,
    credit: u32,
}

/// The link handles of the one session.
struct Handle;
impl Handle {
    const CBS_REQUESTS: u32 = 0;
    const CBS_REPLIES: u32 = 1;
    const QUEUE: u32 = 2;
}

impl Link {
    async fn send(&mut self, message: &Outgoing<'_>) -> Result<(), String> {
        while self.credit == 0 {
            let frame = self.connection.next_frame().await?;
            self.credit = credit_from(&frame, Handle::QUEUE, self.sent).unwrap_or(0);
        }
        let delivery = self.connection.transfer(Handle::QUEUE, &encode_message(message)).await?;
        self.sent = self.sent.wrapping_add(1);
        self.credit -= 1;
        loop {
            let frame = self.connection.next_frame().await?;
            if let Some(credit) = credit_from(&frame, Handle::QUEUE, self.sent) {
                self.credit = credit;
            } else if let Some(outcome) = disposition_of(&frame, delivery) {
                return outcome;
            }
        }
    }
}

// ---- Connection: frames in and out, and the steps of opening one ----

struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Delivery ids are numbered per session, across its links.
    next_delivery: u32,
}

/// A frame received: its performative (descriptor code and fields) and the payload after it.
struct Frame {
    code: u64,
    fields: Vec<Value>,
    payload: Vec<u8>,
}

impl Frame {
    fn field(&self, index: usize) -> &Value {
        self.fields.get(index).unwrap_or(&Value::Null)
    }
}

mod performative {
    pub const OPEN: u64 = 0x10;
    pub const BEGIN: u64 = 0x11;
    pub const ATTACH: u64 = 0x12;
    pub const FLOW: u64 = 0x13;
    pub const TRANSFER: u64 = 0x14;
    pub const DISPOSITION: u64 = 0x15;
    pub const DETACH: u64 = 0x16;
    pub const END: u64 = 0x17;
    pub const CLOSE: u64 = 0x18;
    pub const SASL_MECHANISMS: u64 = 0x40;
    pub const SASL_INIT: u64 = 0x41;
    pub const SASL_OUTCOME: u64 = 0x44;
    pub const ERROR: u64 = 0x1d;
    pub const SOURCE: u64 = 0x28;
    pub const TARGET: u64 = 0x29;
    pub const ACCEPTED: u64 = 0x24;
    pub const REJECTED: u64 = 0x25;
}
use performative as p;

impl Connection {
    async fn authenticate_anonymously(&mut self, host: &str) -> Result<(), String> {
        self.exchange_header(SASL_HEADER).await?;
        let mechanisms = self.next_frame().await?;
        expect(&mechanisms, p::SASL_MECHANISMS, "sasl-mechanisms")?;
        let offered = mechanisms.field(0).symbols();
        if !offered.iter().any(|m| m == "ANONYMOUS") {
            return Err(format!("the broker offers SASL {offered:?}, not ANONYMOUS"));
        }
        let init = described(
            p::SASL_INIT,
            vec![Value::Symbol("ANONYMOUS".into()), Value::Binary(Vec::new()), Value::String(host.into())],
        );
        self.write_frame(1, &init, &[]).await?;
        let outcome = self.next_frame().await?;
        expect(&outcome, p::SASL_OUTCOME, "sasl-outcome")?;
        match outcome.field(0).unsigned() {
            Some(0) => Ok(()),
            code => Err(format!("SASL ANONYMOUS failed with code {code:?}")),
        }
    }

    async fn open(&mut self, host: &str) -> Result<(), String> {
        self.exchange_header(AMQP_HEADER).await?;
        let open = described(
            p::OPEN,
            vec![
                Value::String(format!("dispatcher-{}", std::process::id())),
                Value::String(host.into()),
                Value::UInt(MAX_FRAME_SIZE),
                Value::UShort(0),
            ],
        );
        self.write_frame(0, &open, &[]).await?;
        // next-outgoing-id 0, incoming and outgoing windows wide enough for every transfer we make.
        let begin = described(
            p::BEGIN,
            vec![Value::Null, Value::UInt(0), Value::UInt(u32::MAX >> 1), Value::UInt(u32::MAX >> 1)],
        );
        self.write_frame(0, &begin, &[]).await?;
        expect(&self.next_frame().await?, p::OPEN, "open")?;
        expect(&self.next_frame().await?, p::BEGIN, "begin")
    }

    /// Claims access to the queue: a `put-token` request on `$cbs` and its answer (202, or an error status).
    async fn put_token(&mut self, audience: &str, token: &str) -> Result<(), String> {
        let reply_to = "dispatcher-cbs-replies";
        self.write_frame(0, &attach(Handle::CBS_REQUESTS, "dispatcher-cbs-requests", false, "$cbs", "$cbs"), &[])
            .await?;
        self.write_frame(0, &attach(Handle::CBS_REPLIES, reply_to, true, "$cbs", reply_to), &[]).await?;
        let flow = described(
            p::FLOW,
            vec![
                Value::UInt(0),
                Value::UInt(u32::MAX >> 1),
                Value::UInt(0),
                Value::UInt(u32::MAX >> 1),
                Value::UInt(Handle::CBS_REPLIES),
                Value::UInt(0),
                Value::UInt(1),
            ],
        );
        self.write_frame(0, &flow, &[]).await?;
        let mut credit = 0;
        while credit == 0 {
            let frame = self.next_frame().await?;
            credit = credit_from(&frame, Handle::CBS_REQUESTS, 0).unwrap_or(0);
        }
        let request = [
            section(
                0x73,
                Value::List(vec![
                    Value::String("put-token-1".into()),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::String(reply_to.into()),
                ]),
            ),
            section(
                0x74,
                Value::Map(vec![
                    (Value::String("operation".into()), Value::String("put-token".into())),
                    (Value::String("type".into()), Value::String("servicebus.windows.net:sastoken".into())),
                    (Value::String("name".into()), Value::String(audience.into())),
                ]),
            ),
            section(0x77, Value::String(token.into())),
        ]
        .concat();
        self.transfer(Handle::CBS_REQUESTS, &request).await?;
        loop {
            let frame = self.next_frame().await?;
            if frame.code == p::TRANSFER && frame.field(0).unsigned() == Some(u64::from(Handle::CBS_REPLIES)) {
                let properties = application_properties(&frame.payload)?;
                let status =
                    properties.iter().find(|(k, _)| k.text() == Some("status-code")).and_then(|(_, v)| v.signed());
                let description = properties
                    .iter()
                    .find(|(k, _)| k.text() == Some("status-description"))
                    .and_then(|(_, v)| v.text().map(str::to_owned));
                return match status {
                    Some(200 | 202) => Ok(()),
                    status => Err(format!(
                        "put-token for {audience} refused: status {status:?}, {}",
                        description.unwrap_or_else(|| "no description".into())
                    )),
                };
            }
        }
    }

    /// Attaches the sending link to `queue`; returns the credit the broker gave it. A broker refusing the link
    /// follows its attach with a detach that carries the reason, which `next_frame` returns as the error.
    async fn attach(&mut self, handle: u32, name: &str, queue: &str) -> Result<u32, String> {
        self.write_frame(0, &attach(handle, name, false, name, queue), &[]).await?;
        loop {
            let frame = self.next_frame().await?;
            if let Some(credit) = credit_from(&frame, handle, 0).filter(|&c| c > 0) {
                return Ok(credit);
            }
        }
    }

    /// Sends `message` on the link `handle`, in as many frames as it needs; returns its delivery id.
    async fn transfer(&mut self, handle: u32, message: &[u8]) -> Result<u32, String> {
        let delivery = self.next_delivery;
        self.next_delivery = delivery.wrapping_add(1);
        let tag = Value::Binary(delivery.to_be_bytes().to_vec());
        // What fits in a frame beside the transfer performative (at most ~40 bytes); the rest follows in more.
        let room = MAX_FRAME_SIZE as usize - 64;
        let chunks: Vec<&[u8]> = if message.is_empty() { vec![message] } else { message.chunks(room).collect() };
        for (index, chunk) in chunks.iter().enumerate() {
            let more = index + 1 < chunks.len();
            let fields = if index == 0 {
                vec![
                    Value::UInt(handle),
                    Value::UInt(delivery),
                    tag.clone(),
                    Value::UInt(0),
                    Value::Bool(false),
                    Value::Bool(more),
                ]
            } else {
                vec![Value::UInt(handle), Value::Null, Value::Null, Value::Null, Value::Null, Value::Bool(more)]
            };
            self.write_frame(0, &described(p::TRANSFER, fields), chunk).await?;
        }
        Ok(delivery)
    }

    async fn exchange_header(&mut self, header: &[u8; 8]) -> Result<(), String> {
        self.stream.write_all(header).await.map_err(io_error)?;
        let mut answer = [0u8; 8];
        self.stream.read_exact(&mut answer).await.map_err(io_error)?;
        if &answer != header {
            return Err(format!("the broker answered the protocol header {header:?} with {answer:?}"));
        }
        Ok(())
    }

    async fn write_frame(&mut self, frame_type: u8, performative: &Value, payload: &[u8]) -> Result<(), String> {
        let mut body = Vec::with_capacity(64 + payload.len());
        performative.encode(&mut body);
        body.extend_from_slice(payload);
        let size = u32::try_from(8 + body.len()).map_err(|_| "a frame over 4 GB".to_owned())?;
        let mut frame = Vec::with_capacity(size as usize);
        frame.extend_from_slice(&size.to_be_bytes());
        frame.extend_from_slice(&[2, frame_type, 0, 0]);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.map_err(io_error)
    }

    /// The next frame that is not empty (a heartbeat). A close, end or detach from the broker is an error that
    /// carries the broker's condition and description.
    async fn next_frame(&mut self) -> Result<Frame, String> {
        loop {
            let mut head = [0u8; 8];
            self.stream.read_exact(&mut head).await.map_err(io_error)?;
            let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let offset = usize::from(head[4]) * 4;
            if size < 8 || offset < 8 || offset > size || size > MAX_FRAME_SIZE as usize {
                return Err(format!("a malformed frame header {head:?}"));
            }
            self.buffer.resize(size - 8, 0);
            self.stream.read_exact(&mut self.buffer).await.map_err(io_error)?;
            let body = &self.buffer[offset - 8..];
            if body.is_empty() {
                continue;
            }
            let mut reader = Reader { bytes: body, at: 0 };
            let (code, fields) = match reader.value()? {
                Value::Described(code, fields) => (code.unsigned().unwrap_or(u64::MAX), fields.into_list()),
                other => return Err(format!("a frame without a performative: {other:?}")),
            };
            let frame = Frame { code, fields, payload: body[reader.at..].to_vec() };
            // Nothing here detaches, ends or closes, so the broker doing it is always the end of this connection.
            let error = match frame.code {
                p::DETACH => frame.field(2),
                p::END | p::CLOSE => frame.field(0),
                _ => return Ok(frame),
            };
            return Err(format!("the broker closed the link: {}", error_text(error)));
        }
    }
}

/// The credit a flow frame leaves the link `handle` that has made `sent` transfers, if the frame is for it: the
/// broker counts from its own view of the delivery-count, which lags when transfers are in flight.
fn credit_from(frame: &Frame, handle: u32, sent: u32) -> Option<u32> {
    if frame.code != p::FLOW || frame.field(4).unsigned() != Some(u64::from(handle)) {
        return None;
    }
    let counted = frame.field(5).unsigned().unwrap_or(0) as u32;
    let credit = frame.field(6).unsigned().unwrap_or(0) as u32;
    Some(counted.wrapping_add(credit).wrapping_sub(sent))
}

fn expect(frame: &Frame, code: u64, what: &str) -> Result<(), String> {
    if frame.code == code {
        Ok(())
    } else {
        Err(format!("expected {what} from the broker, got performative {:#x}", frame.code))
    }
}

/// The outcome of `delivery`, if `frame` settles it.
fn disposition_of(frame: &Frame, delivery: u32) -> Option<Result<(), String>> {
    if frame.code != p::DISPOSITION || frame.field(0).boolean() != Some(true) {
        return None;
    }
    let first = frame.field(1).unsigned()?;
    let last = frame.field(2).unsigned().unwrap_or(first);
    if !(first..=last).contains(&u64::from(delivery)) {
        return None;
    }
    Some(match frame.field(4) {
        Value::Described(code, _) if code.unsigned() == Some(p::ACCEPTED) => Ok(()),
        Value::Described(code, fields) if code.unsigned() == Some(p::REJECTED) => {
            let error = fields.clone().into_list().into_iter().next().unwrap_or(Value::Null);
            Err(format!("the broker rejected the message: {}", error_text(&error)))
        }
        other => Err(format!("the broker did not accept the message: {other:?}")),
    })
}

fn error_text(error: &Value) -> String {
    match error {
        Value::Described(code, fields) if code.unsigned() == Some(p::ERROR) => {
            let fields = fields.clone().into_list();
            let get = |i: usize| fields.get(i).and_then(Value::text).unwrap_or("").to_owned();
            format!("{} {}", get(0), get(1)).trim().to_owned()
        }
        Value::Null => "no error given".into(),
        other => format!("{other:?}"),
    }
}

fn io_error(error: std::io::Error) -> String {
    format!("connection lost: {error}")
}

fn described(code: u64, fields: Vec<Value>) -> Value {
    Value::Described(Box::new(Value::ULong(code)), Box::new(Value::List(fields)))
}

/// An attach: `receiver` is our role; the source and target addresses of the link.
fn attach(handle: u32, name: &str, receiver: bool, source: &str, target: &str) -> Value {
    let mut fields = vec![
        Value::String(name.into()),
        Value::UInt(handle),
        Value::Bool(receiver),
        Value::UByte(0),
        Value::UByte(0),
        described(p::SOURCE, vec![Value::String(source.into())]),
        described(p::TARGET, vec![Value::String(target.into())]),
    ];
    if !receiver {
        // unsettled, incomplete-unsettled, then the initial-delivery-count a sender must give.
        fields.extend([Value::Null, Value::Null, Value::UInt(0)]);
    }
    described(p::ATTACH, fields)
}

fn section(code: u64, value: Value) -> Vec<u8> {
    let mut bytes = Vec::new();
    Value::Described(Box::new(Value::ULong(code)), Box::new(value)).encode(&mut bytes);
    bytes
}

/// The sections of a queue message: header (durable), message annotations (the schedule), properties, data.
fn encode_message(message: &Outgoing<'_>) -> Vec<u8> {
    let mut bytes = section(0x70, Value::List(vec![Value::Bool(true)]));
    if let Some(at) = message.scheduled_at_ms {
        let annotation = (Value::Symbol("x-opt-scheduled-enqueue-time".into()), Value::Timestamp(at));
        bytes.extend(section(0x72, Value::Map(vec![annotation])));
    }
    let text = |value: Option<&str>| value.map_or(Value::Null, |v| Value::String(v.into()));
    let properties = vec![
        text(message.message_id),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        text(message.correlation_id),
        Value::Symbol(message.content_type.into()),
    ];
    bytes.extend(section(0x73, Value::List(properties)));
    bytes.extend(section(0x75, Value::Binary(message.body.to_vec())));
    bytes
}

/// The application properties of a received message.
fn application_properties(message: &[u8]) -> Result<Vec<(Value, Value)>, String> {
    let mut reader = Reader { bytes: message, at: 0 };
    while reader.at < message.len() {
        if let Value::Described(code, value) = reader.value()? {
            if code.unsigned() == Some(0x74) {
                if let Value::Map(pairs) = *value {
                    return Ok(pairs);
                }
            }
        }
    }
    Ok(Vec::new())
}

// ---- The AMQP type system, as far as these frames need it ----

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    UByte(u8),
    UShort(u16),
    UInt(u32),
    ULong(u64),
    Int(i64),
    Timestamp(i64),
    Binary(Vec<u8>),
    String(String),
    Symbol(String),
    List(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Array(Vec<Value>),
    Described(Box<Value>, Box<Value>),
    /// A value of a type these frames do not use (float, uuid, ...), kept as its constructor.
    Other(u8),
}

impl Value {
    fn unsigned(&self) -> Option<u64> {
        match *self {
            Value::UByte(v) => Some(v.into()),
            Value::UShort(v) => Some(v.into()),
            Value::UInt(v) => Some(v.into()),
            Value::ULong(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    fn signed(&self) -> Option<i64> {
        match *self {
            Value::Int(v) => Some(v),
            _ => self.unsigned().and_then(|v| i64::try_from(v).ok()),
        }
    }

    fn boolean(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// A symbol or an array of them (a multiple field).
    fn symbols(&self) -> Vec<String> {
        match self {
            Value::Symbol(s) => vec![s.clone()],
            Value::Array(items) => items.iter().filter_map(Value::text).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    fn into_list(self) -> Vec<Value> {
        match self {
            Value::List(items) => items,
            _ => Vec::new(),
        }
    }

    /// Writes the value with its widest encoding where there is a choice: simple and always valid.
    fn encode(&self, out: &mut Vec<u8>) {
        let variable = |out: &mut Vec<u8>, code: u8, bytes: &[u8]| {
            out.push(code);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        match self {
            Value::Null => out.push(0x40),
            Value::Bool(v) => out.push(if *v { 0x41 } else { 0x42 }),
            Value::UByte(v) => fixed(out, 0x50, &[*v]),
            Value::UShort(v) => fixed(out, 0x60, &v.to_be_bytes()),
            Value::UInt(v) => fixed(out, 0x70, &v.to_be_bytes()),
            Value::ULong(v) => fixed(out, 0x80, &v.to_be_bytes()),
            Value::Int(v) => fixed(out, 0x81, &v.to_be_bytes()),
            Value::Timestamp(v) => fixed(out, 0x83, &v.to_be_bytes()),
            Value::Binary(bytes) => variable(out, 0xb0, bytes),
            Value::String(text) => variable(out, 0xb1, text.as_bytes()),
            Value::Symbol(text) => variable(out, 0xb3, text.as_bytes()),
            Value::List(items) => compound(out, 0xd0, items.len(), |inner| items.iter().for_each(|i| i.encode(inner))),
            Value::Map(pairs) => compound(out, 0xd1, pairs.len() * 2, |inner| {
                pairs.iter().for_each(|(k, v)| {
                    k.encode(inner);
                    v.encode(inner);
                })
            }),
            Value::Array(items) => {
                // Written as an array of symbols (the only arrays the frames here hold), one constructor for all.
                let mut inner = Vec::new();
                inner.extend_from_slice(&(items.len() as u32).to_be_bytes());
                inner.push(0xb3);
                for item in items {
                    let text = item.text().unwrap_or_default().as_bytes();
                    inner.extend_from_slice(&(text.len() as u32).to_be_bytes());
                    inner.extend_from_slice(text);
                }
                out.push(0xf0);
                out.extend_from_slice(&(inner.len() as u32).to_be_bytes());
                out.extend_from_slice(&inner);
            }
            Value::Described(descriptor, value) => {
                out.push(0x00);
                descriptor.encode(out);
                value.encode(out);
            }
            Value::Other(code) => out.push(*code),
        }
    }
}

/// A fixed-width value: its constructor, then its big-endian bytes.
fn fixed(out: &mut Vec<u8>, code: u8, bytes: &[u8]) {
    out.push(code);
    out.extend_from_slice(bytes);
}

/// A list or map: size (of count and items) and count, 32-bit each.
fn compound(out: &mut Vec<u8>, code: u8, count: usize, items: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = (count as u32).to_be_bytes().to_vec();
    items(&mut inner);
    out.push(code);
    out.extend_from_slice(&(inner.len() as u32).to_be_bytes());
    out.extend_from_slice(&inner);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("a value runs past the end of its frame at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, width: usize) -> Result<u64, String> {
        Ok(self.take(width)?.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    fn value(&mut self) -> Result<Value, String> {
        let code = self.byte()?;
        if code == 0x00 {
            let descriptor = self.value()?;
            let value = self.value()?;
            return Ok(Value::Described(Box::new(descriptor), Box::new(value)));
        }
        self.constructed(code)
    }

    /// A value of the type `code`, with the width its subcategory (the high nibble) gives.
    fn constructed(&mut self, code: u8) -> Result<Value, String> {
        Ok(match code {
            0x40 => Value::Null,
            0x41 => Value::Bool(true),
            0x42 => Value::Bool(false),
            0x56 => Value::Bool(self.byte()? != 0),
            0x43 => Value::UInt(0),
            0x44 => Value::ULong(0),
            0x45 => Value::List(Vec::new()),
            0x50 => Value::UByte(self.byte()?),
            0x52 => Value::UInt(self.byte()?.into()),
            0x53 => Value::ULong(self.byte()?.into()),
            0x51 => Value::Int(i64::from(self.byte()? as i8)),
            0x54 => Value::Int(i64::from(self.byte()? as i8)),
            0x55 => Value::Int(i64::from(self.byte()? as i8)),
            0x60 => Value::UShort(self.uint(2)? as u16),
            0x61 => Value::Int(i64::from(self.uint(2)? as u16 as i16)),
            0x70 => Value::UInt(self.uint(4)? as u32),
            0x71 => Value::Int(i64::from(self.uint(4)? as u32 as i32)),
            0x80 => Value::ULong(self.uint(8)?),
            0x81 => Value::Int(self.uint(8)? as i64),
            0x83 => Value::Timestamp(self.uint(8)? as i64),
            0xa0 | 0xb0 => {
                let n = self.size(code)?;
                Value::Binary(self.take(n)?.to_vec())
            }
            0xa1 | 0xb1 | 0xa3 | 0xb3 => {
                let n = self.size(code)?;
                let text = String::from_utf8_lossy(self.take(n)?).into_owned();
                if code & 0x0f == 0x03 {
                    Value::Symbol(text)
                } else {
                    Value::String(text)
                }
            }
            0xc0 | 0xd0 | 0xc1 | 0xd1 => {
                let size = self.size(code)?;
                let end = self.at + size;
                let count = self.uint(if code & 0xf0 == 0xc0 { 1 } else { 4 })? as usize;
                let mut items = Vec::with_capacity(count.min(256));
                for _ in 0..count {
                    items.push(self.value()?);
                }
                if self.at != end {
                    return Err(format!("a list or map of {size} bytes does not hold its {count} items"));
                }
                if code & 0x0f == 0x01 {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut items = items.into_iter();
                    while let (Some(k), Some(v)) = (items.next(), items.next()) {
                        pairs.push((k, v));
                    }
                    Value::Map(pairs)
                } else {
                    Value::List(items)
                }
            }
            0xe0 | 0xf0 => {
                let size = self.size(code)?;
                let end = self.at + size;
                let count = self.uint(if code == 0xe0 { 1 } else { 4 })? as usize;
                let element = self.byte()?;
                let mut items = Vec::with_capacity(count.min(256));
                for _ in 0..count {
                    items.push(self.constructed(element)?);
                }
                self.at = end;
                Value::Array(items)
            }
            // Fixed widths by subcategory: 0x4_ none, 0x5_ 1, 0x6_ 2, 0x7_ 4, 0x8_ 8, 0x9_ 16 bytes.
            _ => {
                let width = match code >> 4 {
                    0x4 => 0,
                    0x5 => 1,
                    0x6 => 2,
                    0x7 => 4,
                    0x8 => 8,
                    0x9 => 16,
                    0xa | 0xc | 0xe => self.byte()? as usize,
                    0xb | 0xd | 0xf => self.uint(4)? as usize,
                    _ => return Err(format!("an unknown type constructor {code:#04x}")),
                };
                self.take(width)?;
                Value::Other(code)
            }
        })
    }

    /// The size of a variable-width or compound value: one byte for the 0xa_/0xc_/0xe_ forms, else four.
    fn size(&mut self, code: u8) -> Result<usize, String> {
        let size = if matches!(code >> 4, 0xa | 0xc | 0xe) { self.byte()? as usize } else { self.uint(4)? as usize };
        if self.at + size > self.bytes.len() {
            return Err(format!("a value of {size} bytes runs past the end of its frame"));
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: Value) -> Value {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        let mut reader = Reader { bytes: &bytes, at: 0 };
        let decoded = reader.value().unwrap();
        assert_eq!(reader.at, bytes.len(), "all of {bytes:?} read");
        decoded
    }

    #[test]
    fn values_read_back_as_written() {
        let value = described(
            p::ATTACH,
            vec![
                Value::String("link".into()),
                Value::UInt(7),
                Value::Bool(false),
                Value::Map(vec![(Value::Symbol("x-opt".into()), Value::Timestamp(-5))]),
                Value::Binary(vec![0, 1, 2]),
                Value::Array(vec![Value::Symbol("ANONYMOUS".into()), Value::Symbol("PLAIN".into())]),
                Value::ULong(u64::MAX),
                Value::Null,
            ],
        );
        assert_eq!(round_trip(value.clone()), value);
    }

    #[test]
    fn compact_encodings_of_other_peers_are_read() {
        // list8 of: smalluint 5, uint0, sym8 "ab", str8 "c", true, ubyte 3, array8 of two sym8.
        let bytes = [
            0xc0, 22, 7, 0x52, 5, 0x43, 0xa3, 2, b'a', b'b', 0xa1, 1, b'c', 0x41, 0x50, 3, 0xe0, 6, 2, 0xa3, 1, b'x',
            1, b'y',
        ];
        let value = Reader { bytes: &bytes, at: 0 }.value().unwrap();
        assert_eq!(
            value,
            Value::List(vec![
                Value::UInt(5),
                Value::UInt(0),
                Value::Symbol("ab".into()),
                Value::String("c".into()),
                Value::Bool(true),
                Value::UByte(3),
                Value::Array(vec![Value::Symbol("x".into()), Value::Symbol("y".into())]),
            ])
        );
    }

    #[test]
    fn truncated_and_unknown_input_is_an_error_not_a_panic() {
        let truncated = [0xb1, 0, 0, 0, 9, b'a'];
        assert_eq!(
            Reader { bytes: &truncated, at: 0 }.value().unwrap_err(),
            "a value of 9 bytes runs past the end of its frame"
        );
        assert_eq!(Reader { bytes: &[0x30], at: 0 }.value().unwrap_err(), "an unknown type constructor 0x30");
        assert!(Reader { bytes: &[0xd0, 0, 0, 0, 4, 0, 0, 0, 3], at: 0 }.value().is_err());
    }

    #[test]
    fn a_message_has_its_sections_in_order() {
        let message = Outgoing {
            message_id: Some("d-1"),
            correlation_id: None,
            content_type: "application/json",
            scheduled_at_ms: Some(1_000),
            body: b"{}",
        };
        let bytes = encode_message(&message);
        let mut reader = Reader { bytes: &bytes, at: 0 };
        let mut codes = Vec::new();
        while reader.at < bytes.len() {
            if let Value::Described(code, _) = reader.value().unwrap() {
                codes.push(code.unsigned().unwrap());
            }
        }
        assert_eq!(codes, [0x70, 0x72, 0x73, 0x75]);
    }
}
