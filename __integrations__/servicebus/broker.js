// An AMQP 1.0 broker that holds clients to the contract of the Service Bus emulator, which cannot run on this
// machine (it needs Docker): for the tests of the dispatcher's AMQP sender and of the test agent's producer.
//
// It is built on rhea, the AMQP 1.0 library of the Azure SDK for JavaScript, so the frames are checked by a real
// protocol implementation. The contract it enforces (../../../shared/reference/azure-functions-custom-handler.md §8,
// and what Service Bus itself answers):
// - SASL is required, and ANONYMOUS is the mechanism offered, as by Service Bus;
// - a link to a queue is refused (amqp:unauthorized-access) until a CBS `put-token` on `$cbs` gave a token for
//   it: `SharedAccessSignature sr=..&sig=..&se=..&skn=..`, signed with the key of the policy, not expired, for a
//   resource that covers `sb://<host>/<queue>`; a bad token is answered with status-code 401;
// - only the queues declared in the emulator's Config.json exist (amqp:not-found otherwise);
// - messages are accepted and written to stdout, one JSON line each, for the test to read.
//
// Usage: node broker.js <port, 0 for any> <Config.json> [key]; prints `listening <port>` first.

'use strict';
const crypto = require('crypto');
const fs = require('fs');
const rhea = require('rhea');

const POLICY = 'RootManageSharedAccessKey';
const [portArgument = '0', configPath, key = 'SAS_KEY_VALUE'] = process.argv.slice(2);
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const queues = new Set(config.UserConfig.Namespaces.flatMap((ns) => ns.Queues.map((q) => q.Name)));

function report(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
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

container.on('sender_open', (context) => {
  const address = context.sender.source && context.sender.source.address;
  // Service Bus answers an attach with the terminus it was asked for; rhea leaves it out unless told.
  context.sender.set_source(context.sender.remote.attach.source);
  context.sender.set_target(context.sender.remote.attach.target);
  if (address === '$cbs') {
    stateOf(context.connection).cbsReplies = context.sender;
  } else {
    context.sender.close({ condition: 'amqp:not-implemented', description: 'this broker only receives' });
  }
});

container.on('receiver_open', (context) => {
  const address = context.receiver.target && context.receiver.target.address;
  context.receiver.set_source(context.receiver.remote.attach.source);
  context.receiver.set_target(context.receiver.remote.attach.target);
  if (address === '$cbs') return;
  const audience = `sb://${context.connection.hostname}/${address}`;
  if (!queues.has(address)) {
    report({ refused: address, condition: 'amqp:not-found' });
    context.receiver.close({ condition: 'amqp:not-found', description: `The messaging entity '${audience}' could not be found.` });
  } else if (!stateOf(context.connection).authorised.has(audience)) {
    report({ refused: address, condition: 'amqp:unauthorized-access' });
    context.receiver.close({ condition: 'amqp:unauthorized-access', description: `Unauthorized access to '${audience}': no put-token for it.` });
  }
});

container.on('message', (context) => {
  const message = context.message;
  const address = context.receiver.target.address;
  if (address === '$cbs') {
    putToken(context.connection, message);
    return;
  }
  const body = message.body && message.body.typecode === 0x75 ? Buffer.from(message.body.content) : null;
  const scheduled = message.message_annotations && message.message_annotations['x-opt-scheduled-enqueue-time'];
  report({
    queue: address,
    message_id: message.message_id === undefined ? null : message.message_id,
    correlation_id: message.correlation_id === undefined ? null : message.correlation_id,
    content_type: message.content_type === undefined ? null : message.content_type,
    durable: Boolean(message.durable),
    scheduled_enqueue_time: scheduled instanceof Date ? scheduled.getTime() : scheduled === undefined ? null : scheduled,
    body_section: body === null ? 'not a data section' : 'data',
    body: body === null ? null : body.toString('utf8'),
  });
});

function putToken(connection, request) {
  const properties = request.application_properties || {};
  const audience = properties.name;
  let problem = null;
  if (properties.operation !== 'put-token') problem = `operation ${properties.operation} is not put-token`;
  else if (properties.type !== 'servicebus.windows.net:sastoken') problem = `type ${properties.type} is not a SAS token`;
  else problem = tokenProblem(request.body, String(audience));
  if (problem === null) stateOf(connection).authorised.add(audience);
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

// Clients that drop the connection without closing it are no news here.
container.on('disconnected', () => {});

const server = container.listen({ port: Number(portArgument), host: '127.0.0.1', require_sasl: true });
server.on('listening', () => process.stdout.write(`listening ${server.address().port}\n`));
