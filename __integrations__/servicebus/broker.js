// A stand-in of Service Bus for machines without Docker (the emulator needs it): an AMQP 1.0 broker that holds
// clients to the emulator's contract and keeps the queues of its Config.json as Service Bus does. The handler
// sends to it with the Azure SDK's AMQP client; the test agent's Functions-host stand-in receives from it, so
// that what runs here is the path that runs against the emulator and Azure (docs/azure-functions.md).
//
// Built on rhea, the AMQP 1.0 library of the Azure SDK for JavaScript, so frames are checked by a real protocol
// implementation. What it holds clients to:
// - SASL is required, and ANONYMOUS is the mechanism offered, as by Service Bus;
// - a link to a queue is refused (amqp:unauthorized-access) until a CBS `put-token` on `$cbs` gave a token that
//   covers it: `SharedAccessSignature sr=..&sig=..&se=..&skn=..`, signed with the policy's key, not expired; a
//   bad token is answered with status-code 401;
// - only the queues of Config.json exist (amqp:not-found otherwise), each with its dead-letter sub-queue
//   `<queue>/$deadletterqueue`.
// What it keeps, per queue, as Service Bus does:
// - a message with `x-opt-scheduled-enqueue-time` becomes visible then;
// - with RequiresDuplicateDetection, a message whose message-id was seen within the window is dropped (accepted);
// - messages go to receivers with credit, locked (peek-lock) for LockDuration; accepted completes a message,
//   released or modified abandons it (delivery-count + 1), rejected dead-letters it; a lock that runs out, or a
//   link that closes, abandons; past MaxDeliveryCount deliveries a message is dead-lettered with
//   DeadLetterReason MaxDeliveryCountExceeded.
// - with BROKER_JWT set, a `jwt` put-token (a managed identity's Microsoft Entra token) is accepted if it is that.
// It prints one JSON line per event for tests to read: put-tokens, refusals, messages received and dead-lettered.
//
// Usage: node broker.js <port, 0 for any> <Config.json> [key]; prints `listening <port>` first.

'use strict';
const crypto = require('crypto');
const fs = require('fs');
const rhea = require('rhea');

const POLICY = 'RootManageSharedAccessKey';
const DEAD_LETTER = '/$deadletterqueue';
const MAX_TIMER_MS = 2 ** 31 - 1;
const [portArgument = '0', configPath, key = 'SAS_KEY_VALUE'] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));

function report(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

// ISO 8601 durations as Config.json writes them (PT1M, PT20S, PT1H5M).
function milliseconds(duration, fallback) {
  const match = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$/.exec(duration || '');
  if (!match) return fallback;
  const [, h = 0, m = 0, s = 0] = match;
  return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
}

// Every queue and dead-letter queue, by its lower-case address.
const queues = new Map();
let sequence = 0;
for (const namespace of config.UserConfig.Namespaces) {
  for (const declared of namespace.Queues) {
    const p = declared.Properties || {};
    const queue = {
      name: declared.Name,
      maxDeliveryCount: p.MaxDeliveryCount || 10,
      lockMs: milliseconds(p.LockDuration, 60000),
      duplicateWindowMs: p.RequiresDuplicateDetection ? milliseconds(p.DuplicateDetectionHistoryTimeWindow, 600000) : 0,
      seen: new Map(),
      messages: [],
      consumers: new Set(),
    };
    queue.deadLetter = { name: declared.Name + DEAD_LETTER, maxDeliveryCount: Infinity, lockMs: queue.lockMs,
      duplicateWindowMs: 0, seen: new Map(), messages: [], consumers: new Set() };
    queues.set(queue.name.toLowerCase(), queue);
    queues.set(queue.deadLetter.name.toLowerCase(), queue.deadLetter);
  }
}

// Checks a SAS token for `audience`; returns what is wrong with it, or null.
function tokenProblem(token, audience) {
  if (typeof token !== 'string' || !token.startsWith('SharedAccessSignature ')) {
    return 'the token is not a SharedAccessSignature string';
  }
  const fields = new Map(token.slice('SharedAccessSignature '.length).split('&').map((p) => p.split('=', 2)));
  const [sr, sig, se, skn] = ['sr', 'sig', 'se', 'skn'].map((name) => fields.get(name));
  if (!sr || !sig || !se || !skn) return 'the token lacks one of sr, sig, se, skn';
  if (skn !== POLICY) return `skn ${skn} is not the policy ${POLICY}`;
  if (Number(se) * 1000 < Date.now()) return `the token expired at ${se}`;
  const resource = decodeURIComponent(sr).replace(/\/$/, '');
  if (!(audience === resource || audience.startsWith(resource + '/'))) {
    return `the token is for ${resource}, not ${audience}`;
  }
  const expected = crypto.createHmac('sha256', Buffer.from(key, 'utf8')).update(`${sr}\n${se}`).digest('base64');
  if (decodeURIComponent(sig) !== expected) return 'the signature does not match the key';
  return null;
}

const container = rhea.create_container({ id: 'servicebus-test-broker' });
container.sasl_server_mechanisms.enable_anonymous();

// Per connection: the audiences authorised so far, and the link that answers CBS requests.
const sessions = new WeakMap();
function stateOf(connection) {
  if (!sessions.has(connection)) sessions.set(connection, { authorised: new Set(), cbsReplies: null });
  return sessions.get(connection);
}

// The queue a link names, once it is known and authorised; otherwise the link is closed with why.
function queueFor(link, address, connection) {
  const audience = `sb://${connection.hostname}/${address}`;
  const queue = queues.get(String(address).toLowerCase());
  const authorised = [...stateOf(connection).authorised].some((a) => audience === a || audience.startsWith(a + '/'));
  if (!queue) {
    report({ refused: address, condition: 'amqp:not-found' });
    link.close({ condition: 'amqp:not-found', description: `The messaging entity '${audience}' could not be found.` });
    return null;
  }
  if (!authorised) {
    report({ refused: address, condition: 'amqp:unauthorized-access' });
    link.close({ condition: 'amqp:unauthorized-access', description: `Unauthorized access to '${audience}': no put-token for it.` });
    return null;
  }
  return queue;
}

// A receiver of the client: the broker sends it the queue's visible messages.
container.on('sender_open', (context) => {
  const sender = context.sender;
  const address = sender.source && sender.source.address;
  // Service Bus answers an attach with the terminus it was asked for; rhea leaves it out unless told. (Only the
  // target's address: echoed whole, a target of more fields than a target has shifts the fields after it.)
  const target = sender.remote.attach.target;
  sender.set_source(sender.remote.attach.source);
  sender.set_target({ address: target && target.address !== undefined ? target.address : undefined });
  if (address === '$cbs') {
    stateOf(context.connection).cbsReplies = sender;
    return;
  }
  const queue = queueFor(sender, address, context.connection);
  if (queue === null) return;
  sender.queue = queue;
  sender.locked = new Map();
  queue.consumers.add(sender);
  dispatch(queue);
});

container.on('sendable', (context) => {
  if (context.sender.queue) dispatch(context.sender.queue);
});

// Gives visible messages to consumers with credit, each locked until it is settled or its lock runs out.
function dispatch(queue) {
  const now = Date.now();
  for (const consumer of queue.consumers) {
    while (consumer.sendable() && !consumer.is_closed()) {
      const index = queue.messages.findIndex((m) => m.visibleAt <= now);
      if (index < 0) break;
      const [message] = queue.messages.splice(index, 1);
      const annotations = { ...message.annotations, 'x-opt-locked-until': new Date(now + queue.lockMs) };
      const delivery = consumer.send({
        ...message.amqp,
        durable: true,
        delivery_count: message.deliveryCount,
        message_annotations: annotations,
        body: rhea.message.data_section(message.body),
      });
      const lock = setTimeout(() => abandon(queue, consumer, delivery, 'the lock expired'), queue.lockMs);
      consumer.locked.set(delivery, { message, lock });
    }
  }
  const next = Math.min(...queue.messages.map((m) => m.visibleAt));
  if (Number.isFinite(next) && next > now) {
    clearTimeout(queue.wake);
    // Node fires a longer timer at once (after a warning); a message scheduled further out waits in steps.
    queue.wake = setTimeout(() => dispatch(queue), Math.min(next - now, MAX_TIMER_MS));
  }
}

function settled(consumer, delivery) {
  const held = consumer.locked && consumer.locked.get(delivery);
  if (!held) return null;
  consumer.locked.delete(delivery);
  clearTimeout(held.lock);
  return held.message;
}

function abandon(queue, consumer, delivery, why) {
  const message = settled(consumer, delivery);
  if (message === null) return;
  message.deliveryCount += 1;
  if (message.deliveryCount >= queue.maxDeliveryCount) {
    deadLetter(queue, message, 'MaxDeliveryCountExceeded',
      `Message could not be consumed after ${queue.maxDeliveryCount} delivery attempts.`);
  } else {
    message.visibleAt = Date.now();
    queue.messages.push(message);
    report({ abandoned: queue.name, message_id: message.amqp.message_id, delivery_count: message.deliveryCount, why });
  }
  dispatch(queue);
}

function deadLetter(queue, message, reason, description) {
  const target = queue.deadLetter;
  if (!target) return;
  report({ dead_lettered: queue.name, message_id: message.amqp.message_id, reason });
  message.amqp.application_properties = { ...message.amqp.application_properties,
    DeadLetterReason: reason, DeadLetterErrorDescription: description };
  target.messages.push({ ...message, deliveryCount: 0, visibleAt: Date.now() });
  dispatch(target);
}

for (const event of ['accepted', 'released', 'modified', 'rejected']) {
  container.on(event, (context) => {
    const consumer = context.sender;
    if (!consumer || !consumer.queue) return;
    const queue = consumer.queue;
    if (event === 'accepted') {
      if (settled(consumer, context.delivery) !== null) dispatch(queue);
    } else if (event === 'rejected') {
      const message = settled(consumer, context.delivery);
      const error = context.delivery.remote_state && context.delivery.remote_state.error;
      if (message !== null) deadLetter(queue, message, (error && error.condition) || 'rejected', (error && error.description) || '');
    } else {
      abandon(queue, consumer, context.delivery, event);
    }
  });
}

// A consumer gone with messages locked: they are abandoned.
function closeConsumer(consumer) {
  if (!consumer.queue) return;
  consumer.queue.consumers.delete(consumer);
  for (const delivery of [...consumer.locked.keys()]) abandon(consumer.queue, consumer, delivery, 'the link closed');
}
container.on('sender_close', (context) => closeConsumer(context.sender));
container.on('disconnected', (context) => {
  if (!context.connection) return;
  context.connection.each_link((link) => {
    if (link.is_sender()) closeConsumer(link);
  });
});

// A sender of the client: the broker keeps what it sends.
container.on('receiver_open', (context) => {
  const receiver = context.receiver;
  const address = receiver.target && receiver.target.address;
  receiver.set_source(receiver.remote.attach.source);
  receiver.set_target(receiver.remote.attach.target);
  if (address === '$cbs') return;
  const queue = queueFor(receiver, address, context.connection);
  if (queue !== null) receiver.queue = queue;
});

container.on('message', (context) => {
  const message = context.message;
  const address = context.receiver.target.address;
  if (address === '$cbs') {
    putToken(context.connection, message);
    return;
  }
  const queue = context.receiver.queue;
  if (!queue) return;
  const body = message.body && message.body.typecode === 0x75 ? Buffer.from(message.body.content) : null;
  const scheduled = message.message_annotations && message.message_annotations['x-opt-scheduled-enqueue-time'];
  const scheduledAt = scheduled instanceof Date ? scheduled.getTime() : scheduled === undefined ? null : scheduled;
  report({
    queue: address,
    message_id: message.message_id === undefined ? null : message.message_id,
    correlation_id: message.correlation_id === undefined ? null : message.correlation_id,
    content_type: message.content_type === undefined ? null : message.content_type,
    durable: Boolean(message.durable),
    scheduled_enqueue_time: scheduledAt,
    body_section: body === null ? 'not a data section' : 'data',
    body: body === null ? null : body.toString('utf8'),
  });
  const now = Date.now();
  if (queue.duplicateWindowMs > 0 && message.message_id !== undefined) {
    const id = String(message.message_id);
    const seenAt = queue.seen.get(id);
    queue.seen.set(id, now);
    if (seenAt !== undefined && now - seenAt < queue.duplicateWindowMs) {
      report({ duplicate: queue.name, message_id: id });
      return;
    }
  }
  sequence += 1;
  queue.messages.push({
    amqp: {
      message_id: message.message_id,
      correlation_id: message.correlation_id,
      content_type: message.content_type,
      application_properties: message.application_properties,
    },
    annotations: { 'x-opt-enqueued-time': new Date(now), 'x-opt-sequence-number': sequence },
    body: body === null ? Buffer.alloc(0) : body,
    deliveryCount: 0,
    visibleAt: typeof scheduledAt === 'number' ? scheduledAt : now,
  });
  dispatch(queue);
});

// A Microsoft Entra token (type `jwt`), as a managed identity puts it: accepted only when it is the one the
// test's identity endpoint issued (BROKER_JWT), as Service Bus accepts only tokens Entra signed.
function jwtProblem(token) {
  if (!process.env.BROKER_JWT) return 'no Entra token is accepted here (BROKER_JWT is not set)';
  return token === process.env.BROKER_JWT ? null : 'the Entra token was not issued to this identity';
}

function putToken(connection, request) {
  const properties = request.application_properties || {};
  const audience = properties.name;
  let problem = null;
  if (properties.operation !== 'put-token') problem = `operation ${properties.operation} is not put-token`;
  else if (properties.type === 'jwt') problem = jwtProblem(request.body);
  else if (properties.type !== 'servicebus.windows.net:sastoken') problem = `type ${properties.type} is not a SAS token`;
  else problem = tokenProblem(request.body, String(audience));
  if (problem === null) stateOf(connection).authorised.add(String(audience));
  report({ put_token: audience, accepted: problem === null, problem });
  const replies = stateOf(connection).cbsReplies;
  if (replies === null) return;
  replies.send({
    correlation_id: request.message_id,
    to: request.reply_to,
    application_properties: {
      'status-code': problem === null ? 202 : 401,
      'status-description': problem === null ? 'Accepted' : problem,
    },
  });
}

// A client that breaks the protocol is reported (and its connection ends); the broker goes on serving.
container.on('error', (error) => report({ error: String((error && (error.condition || error.message)) || error) }));

const server = container.listen({ port: Number(portArgument), host: '127.0.0.1', require_sasl: true });
server.on('listening', () => process.stdout.write(`listening ${server.address().port}\n`));
