// Webhooks: the list with each one's health, and one webhook's page (its settings, secret, actions, deliveries).
import { h, fill, json, time, field, button, percent, confirmAction } from './dom.js';
import { call, attempt, say, sayNext, changes, webhookPath as path, webhookLink as link, deliveryLink } from './api.js';
import { deliveriesSection } from './deliveries.js';
import { takeNewSecret } from './webhook-form.js';

function state(webhook) {
  return webhook.disabled
    ? h('span', { class: 'badge bad' }, 'Disabled')
    : h('span', { class: 'badge good' }, 'Enabled');
}

function failure(health) {
  const last = health && health.lastFailure;
  if (!last) return 'None';
  return [time(last.at), ' ', h('a', { href: deliveryLink(last.deliveryId) }, last.reason)];
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
      changes(h('a', { href: '#/webhooks/new', class: 'button primary' }, 'Register a webhook'))),
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
  const newSecret = takeNewSecret();
  if (newSecret) {
    fill(secretBox, h('p', { class: 'good' }, 'Registered. Keep its signing secret: you can reveal it here again later.'),
      secretView({ secret: newSecret }));
  }
  const reload = () => webhookPage(main, id);
  const actions = h('div', { class: 'actions' },
    changes(h('a', { class: 'button', href: `${link(id)}/edit` }, 'Edit')),
    changes(button(webhook.disabled ? 'Enable' : 'Disable', async () => {
      const done = await attempt(() => call('PATCH', path(id), { disabled: !webhook.disabled }, 'application/merge-patch+json'));
      if (done) { await reload(); say(done.disabled ? 'Webhook disabled.' : 'Webhook enabled.'); }
    })),
    changes(button('Send a ping', async () => {
      const queued = await attempt(() => call('POST', path(id, '/ping')));
      if (queued) say(`Ping queued as delivery ${queued.id}.`);
    })),
    button('Reveal secret', async () => {
      const secret = await attempt(() => call('GET', path(id, '/secret')));
      if (secret) fill(secretBox, secretView(secret));
    }),
    changes(button('Rotate secret', async () => {
      if (!await confirmAction('Make a new signing secret? The current one keeps signing for 24 hours.', 'Rotate')) return;
      const secret = await attempt(() => call('POST', path(id, '/rotate-secret')));
      if (secret) { fill(secretBox, secretView(secret)); say('Secret rotated.'); }
    })),
    changes(button('Delete', async () => {
      if (!await confirmAction(`Delete the webhook ${webhook.description || webhook.url}? Its pending deliveries end. This cannot be undone.`, 'Delete')) return;
      const deleted = await attempt(() => call('DELETE', path(id)));
      if (deleted !== undefined) { sayNext('Webhook deleted.'); location.hash = '#/webhooks'; }
    }, { class: 'danger' })));
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ', webhook.id),
    h('div', { class: 'title-row' }, h('h1', {}, webhook.description || webhook.url), state(webhook)),
    healthView(health),
    actions,
    secretBox,
    h('details', { class: 'panel' }, h('summary', {}, 'Settings'), settings(webhook)),
    changes(recoverForm(id)),
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
