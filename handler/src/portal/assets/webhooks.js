// Webhooks: the list with each one's health, one webhook's page (its settings, secret, actions, deliveries),
// and the form that registers or edits one.
import { h, fill, json, time, field, button, percent, confirmAction } from './dom.js';
import { call, attempt, say, sayNext, showError, Problem } from './api.js';
import { deliveriesSection } from './deliveries.js';

const path = (id, rest = '') => `/webhooks/${encodeURIComponent(id)}${rest}`;
const link = (id) => `#/webhooks/${encodeURIComponent(id)}`;

/** The secret of a webhook just registered: shown once on its page. */
let newSecret = null;

function state(webhook) {
  return webhook.disabled
    ? h('span', { class: 'badge bad' }, 'Disabled')
    : h('span', { class: 'badge good' }, 'Enabled');
}

function failure(health) {
  const last = health && health.lastFailure;
  if (!last) return 'None';
  return [time(last.at), ' ', h('a', { href: `#/deliveries/${encodeURIComponent(last.deliveryId)}` }, last.reason)];
}

export async function webhookList(main) {
  fill(main, h('h1', {}, 'Webhooks'), h('p', {}, 'Loading…'));
  const webhooks = await attempt(() => call('GET', '/webhooks'));
  if (!webhooks) return;
  const healths = await Promise.all(webhooks.map((w) => call('GET', path(w.id, '/health')).catch(() => null)));
  const cell = (label, ...content) => h('td', { 'data-label': label }, ...content);
  const rows = webhooks.map((w, i) => {
    const health = healths[i];
    return h('tr', {},
      cell('Endpoint', h('a', { href: link(w.id) }, w.description || w.url), h('br'), h('small', {}, w.url)),
      cell('Events', w.subscriptions.join(', ')),
      cell('State', state(w), w.disabledReason && h('small', { class: 'reason' }, ` ${w.disabledReason}`)),
      cell('Deliveries (24 h)', health ? String(health.deliveries) : '–'),
      cell('Success rate', health ? percent(health.successRate) : '–'),
      cell('Last failure', failure(health)));
  });
  fill(main,
    h('div', { class: 'title-row' }, h('h1', {}, 'Webhooks'),
      h('a', { href: '#/webhooks/new', class: 'button primary' }, 'Register a webhook')),
    webhooks.length === 0
      ? h('p', { class: 'empty' }, 'No webhook yet: register an endpoint to receive events.')
      : h('table', { class: 'cards' },
        h('caption', {}, 'Every webhook, with its deliveries of the last 24 hours'),
        h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'State', 'Deliveries (24 h)', 'Success rate', 'Last failure']
          .map((title) => h('th', { scope: 'col' }, title)))),
        h('tbody', {}, rows)));
}

function auth(value) {
  if (!value) return 'None';
  const shown = Object.entries(value).filter(([k]) => k !== 'type' && k !== 'certificate').map(([k, v]) => `${k}: ${v}`);
  return `${value.type}${shown.length ? ` (${shown.join(', ')})` : ''}${value.certificate ? ', client certificate' : ''}`;
}

function settings(w) {
  const rows = [
    ['Id', h('code', {}, w.id)],
    ['URL', w.url],
    ['Events', w.subscriptions.join(', ')],
    ['Attributes', Object.keys(w.attributes).length ? json(w.attributes, 'Attributes') : 'None'],
    ['Headers', Object.keys(w.headers).length ? json(w.headers, 'Headers') : 'None'],
    ['Authentication', auth(w.auth)],
    ['Filter', w.filter ? json(w.filter, 'Filter') : 'None: every event it subscribes to'],
    ['Rate limit', w.rateLimit ? `${w.rateLimit} a second` : 'None'],
    ['Retry schedule', w.retrySchedule ?? 'The dispatcher\u2019s default'],
    ['Success callback', w.callbackUrl || 'None'],
    ['Failure callback', w.failureCallbackUrl || 'None'],
    ['Callback authentication', auth(w.callbackAuth)],
    ['Fail when the answer matches', w.failWhen ? json(w.failWhen, 'failWhen') : 'None'],
    ['Registered', time(w.createdAt)],
    ['Changed', time(w.updatedAt)],
  ];
  if (w.disabledReason) rows.splice(3, 0, ['Disabled because', [w.disabledReason, ' ', time(w.disabledAt)]]);
  return h('dl', { class: 'settings' }, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function secretView(secret) {
  return h('div', { class: 'secret' },
    h('p', {}, 'Signing secret: ', h('code', { id: 'secret-value' }, secret.secret)),
    secret.previousSecret && h('p', {}, 'The previous secret keeps signing until ', time(secret.previousSecretExpiresAt), ': ',
      h('code', {}, secret.previousSecret)),
    h('p', { class: 'hint' }, 'Verify the webhook-signature header with it (Standard Webhooks).'));
}

function healthView(health) {
  if (!health) return null;
  const item = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value));
  return h('dl', { class: 'health', 'aria-label': 'Health over the last 24 hours' },
    item('Deliveries (24 h)', String(health.deliveries)),
    item('Succeeded', String(health.succeeded)),
    item('Retrying', String(health.retrying)),
    item('Dead', String(health.dead)),
    item('Success rate', percent(health.successRate)),
    item('Last failure', failure(health)));
}

export async function webhookPage(main, id) {
  const [webhook, health] = await Promise.all([
    attempt(() => call('GET', path(id))),
    call('GET', path(id, '/health')).catch(() => null),
  ]);
  if (!webhook) return fill(main, h('h1', {}, 'Webhook'), h('a', { href: '#/webhooks' }, 'Back to the webhooks'));
  const secretBox = h('div', { id: 'secret', 'aria-live': 'polite' });
  if (newSecret) {
    fill(secretBox, h('p', { class: 'good' }, 'Registered. Keep its signing secret: you can reveal it here again later.'),
      secretView({ secret: newSecret }));
    newSecret = null;
  }
  const reload = () => webhookPage(main, id);
  const actions = h('div', { class: 'actions' },
    h('a', { class: 'button', href: `${link(id)}/edit` }, 'Edit'),
    button(webhook.disabled ? 'Enable' : 'Disable', async () => {
      const done = await attempt(() => call('PATCH', path(id), { disabled: !webhook.disabled }, 'application/merge-patch+json'));
      if (done) { await reload(); say(done.disabled ? 'Webhook disabled.' : 'Webhook enabled.'); }
    }),
    button('Send a ping', async () => {
      const queued = await attempt(() => call('POST', path(id, '/ping')));
      if (queued) say(`Ping queued as delivery ${queued.id}.`);
    }),
    button('Reveal secret', async () => {
      const secret = await attempt(() => call('GET', path(id, '/secret')));
      if (secret) fill(secretBox, secretView(secret));
    }),
    button('Rotate secret', async () => {
      if (!await confirmAction('Make a new signing secret? The current one keeps signing for 24 hours.', 'Rotate')) return;
      const secret = await attempt(() => call('POST', path(id, '/rotate-secret')));
      if (secret) { fill(secretBox, secretView(secret)); say('Secret rotated.'); }
    }),
    button('Delete', async () => {
      if (!await confirmAction(`Delete the webhook ${webhook.description || webhook.url}? Its pending deliveries end. This cannot be undone.`, 'Delete')) return;
      const deleted = await attempt(() => call('DELETE', path(id)));
      if (deleted !== undefined) { sayNext('Webhook deleted.'); location.hash = '#/webhooks'; }
    }, { class: 'danger' }));
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ', webhook.id),
    h('div', { class: 'title-row' }, h('h1', {}, webhook.description || webhook.url), state(webhook)),
    healthView(health),
    actions,
    secretBox,
    h('details', { class: 'panel' }, h('summary', {}, 'Settings'), settings(webhook)),
    recoverForm(id),
    deliveriesSection(id));
}

function recoverForm(id) {
  const hourAgo = new Date(Date.now() - 3600_000);
  const local = (date) => new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const since = h('input', { type: 'datetime-local', value: local(hourAgo), required: true });
  const until = h('input', { type: 'datetime-local' });
  const form = h('form', { class: 'recover' },
    h('p', {}, 'Sends again every dead or skipped delivery created in the window, each with its id.'),
    field('From', since), field('Until (now when empty)', until),
    h('button', { type: 'submit' }, 'Recover'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { since: new Date(since.value).toISOString() };
    if (until.value) body.until = new Date(until.value).toISOString();
    const done = await attempt(() => call('POST', path(id, '/recover'), body));
    if (done) say(`${done.deliveries} deliveries sent again.`);
  });
  return h('details', { class: 'panel' }, h('summary', {}, 'Recover failed deliveries'), form);
}

// The form: each field as the API names it; JSON ones are parsed here only to say which one is not JSON.
const JSON_FIELDS = ['attributes', 'headers', 'filter', 'auth', 'callbackAuth', 'failWhen'];
const CREDENTIALS = ['auth', 'callbackAuth'];

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The JSON merge patch (RFC 7396) that turns `before` into `after`: a key left out is removed with null. */
function mergeDiff(before, after) {
  if (!isObject(before) || !isObject(after)) return after;
  const patch = {};
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  for (const [key, value] of Object.entries(after)) patch[key] = mergeDiff(before[key], value);
  return patch;
}

export async function webhookForm(main, id) {
  const [webhook, catalog] = await Promise.all([
    id ? attempt(() => call('GET', path(id))) : Promise.resolve(null),
    call('GET', '/events/catalog').catch(() => ({ events: [] })),
  ]);
  if (id && !webhook) return;
  const current = webhook || { url: '', subscriptions: [], attributes: {}, headers: {} };
  const text = (value) => (value === undefined || value === null ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  const inputs = {
    url: h('input', { type: 'url', name: 'url', required: true, value: current.url, placeholder: 'https://your.app/webhooks' }),
    description: h('input', { type: 'text', name: 'description', value: current.description || '' }),
    attributes: h('textarea', { name: 'attributes', rows: 3 }, text(current.attributes)),
    headers: h('textarea', { name: 'headers', rows: 3 }, text(current.headers)),
    filter: h('textarea', { name: 'filter', rows: 4 }, text(current.filter)),
    rateLimit: h('input', { type: 'number', name: 'rateLimit', min: 1, value: current.rateLimit ?? '' }),
    retrySchedule: h('input', { type: 'text', name: 'retrySchedule', value: current.retrySchedule ?? '', placeholder: '10s,1m,10m' }),
    auth: h('textarea', { name: 'auth', rows: 3 }),
    callbackUrl: h('input', { type: 'url', name: 'callbackUrl', value: current.callbackUrl || '' }),
    failureCallbackUrl: h('input', { type: 'url', name: 'failureCallbackUrl', value: current.failureCallbackUrl || '' }),
    callbackAuth: h('textarea', { name: 'callbackAuth', rows: 3 }),
    failWhen: h('textarea', { name: 'failWhen', rows: 3 }, text(current.failWhen)),
  };
  const publicEvents = catalog.events.filter((e) => e.kind === 'public').map((e) => e.name);
  for (const name of current.subscriptions) if (!publicEvents.includes(name)) publicEvents.push(name);
  const boxes = publicEvents.map((name) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'subscriptions', value: name, checked: current.subscriptions.includes(name) }), ` ${name}`));
  const removeAuth = {};
  const credentialsHint = (name) => {
    const now = current[name];
    if (!webhook) return 'JSON, e.g. {"type": "bearer", "token": "…"}; types: basic, bearer, oauth2, mtls. Empty for none.';
    removeAuth[name] = h('input', { type: 'checkbox', name: `remove-${name}` });
    return [now ? `Now: ${now.type}; its secrets are never shown. ` : 'Now: none. ',
      'Empty keeps it as it is; JSON replaces it. ', h('label', {}, removeAuth[name], ' Remove it')];
  };
  const form = h('form', { class: 'webhook-form', novalidate: true },
    field('Endpoint URL', inputs.url, 'Where the events are POSTed, signed.'),
    field('Description', inputs.description),
    h('fieldset', {}, h('legend', {}, 'Events'), boxes),
    field('Attributes', inputs.attributes, 'JSON object of strings: the webhook\u2019s attributes (e.g. serviceId), which route and fill events.'),
    field('Headers', inputs.headers, 'JSON object: headers added to every delivery.'),
    field('Filter', inputs.filter, 'JSON event pattern matched against the body (EventBridge language); empty for every event.'),
    field('Rate limit (deliveries a second)', inputs.rateLimit),
    field('Retry schedule', inputs.retrySchedule, 'Delays between attempts, e.g. 10s,1m,10m; empty for the default.'),
    field('Authentication', inputs.auth, credentialsHint('auth')),
    field('Success callback URL', inputs.callbackUrl),
    field('Failure callback URL', inputs.failureCallbackUrl),
    field('Callback authentication', inputs.callbackAuth, credentialsHint('callbackAuth')),
    field('Fail when the answer matches', inputs.failWhen, 'JSON pattern: a 2xx answer whose JSON body matches it counts as a failure.'),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, webhook ? 'Save' : 'Register'),
      h('a', { class: 'button quiet', href: webhook ? link(id) : '#/webhooks' }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problems = [];
    const body = {};
    for (const [name, input] of Object.entries(inputs)) {
      const value = input.value.trim();
      if (JSON_FIELDS.includes(name) && value) {
        try {
          const parsed = JSON.parse(value);
          body[name] = webhook ? mergeDiff(current[name], parsed) : parsed;
        } catch (error) { problems.push({ path: name, message: `is not valid JSON (${error.message})` }); }
      } else if (name === 'rateLimit' && value) {
        body[name] = Number(value);
      } else if (value) {
        body[name] = value;
      } else if (webhook && !CREDENTIALS.includes(name) && current[name] !== undefined) {
        body[name] = null; // emptied: removed by the merge patch
      }
    }
    for (const name of CREDENTIALS) if (removeAuth[name] && removeAuth[name].checked) body[name] = null;
    body.subscriptions = [...form.querySelectorAll('input[name=subscriptions]:checked')].map((box) => box.value);
    if (problems.length) {
      return showError(new Problem({ title: 'Not sent', detail: 'some fields are not valid JSON', problems }));
    }
    const saved = await attempt(() => (webhook
      ? call('PATCH', path(id), body, 'application/merge-patch+json')
      : call('POST', '/webhooks', body)));
    if (!saved) return;
    if (!webhook) newSecret = saved.secret;
    sayNext(webhook ? 'Saved.' : 'Webhook registered.');
    location.hash = link(saved.id);
  });
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), webhook && [' / ', h('a', { href: link(id) }, id)]),
    h('h1', {}, webhook ? `Edit ${webhook.description || webhook.url}` : 'Register a webhook'),
    form);
  inputs.url.focus();
}
