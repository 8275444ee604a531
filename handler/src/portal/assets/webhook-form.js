// The form that registers or edits a webhook: each field as the API names it, sent as the API takes it.
import { h, fill, field, json, button } from './dom.js';
import { call, attempt, sayNext, showError, Problem, webhookPath as path, webhookLink as link } from './api.js';

/** The secret of a webhook just registered: shown once on its page. */
let newSecret = null;

/** The secret the form's registration answered, given once. */
export function takeNewSecret() {
  const secret = newSecret;
  newSecret = null;
  return secret;
}

// JSON fields are parsed here only to say which one is not JSON; the API checks everything else.
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

/** The "try it on a sample" box: the transform as typed, run by the dispatcher on a sample event of the
 * catalog with the attributes as typed; nothing is saved. */
function transformTrial(catalog, inputs) {
  const samples = h('select', { name: 'transform-sample' },
    catalog.events.map((e) => h('option', { value: e.name }, e.name)));
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const tryIt = async () => {
    const sample = catalog.events.find((e) => e.name === samples.value);
    let attributes = {};
    try { attributes = inputs.attributes.value.trim() ? JSON.parse(inputs.attributes.value) : {}; } catch (error) {
      return showError(new Problem({ title: 'Not tried', detail: 'the attributes are not valid JSON', problems: [{ path: 'attributes', message: error.message }] }));
    }
    const body = { transform: inputs.transform.value, event: sample ? sample.example : null, attributes };
    const tried = await attempt(() => call('POST', '/transforms/preview', body));
    if (!tried) return fill(results);
    fill(results, tried.length === 0
      ? h('p', { class: 'empty' }, 'This sample makes no event this webhook could receive with these attributes.')
      : h('ul', { class: 'tried' }, tried.map((t) => h('li', {},
        h('code', {}, t.event), ': ', h('span', { class: `badge ${t.outcome}` }, t.outcome),
        t.reason && [' ', t.reason],
        t.outcome === 'sent' && json(t.body, `Body for ${t.event}`)))));
  };
  return h('fieldset', { class: 'trial' }, h('legend', {}, 'Try the transform on a sample'),
    field('Sample event', samples), button('Try it', tryIt), results);
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
    transform: h('textarea', { name: 'transform', rows: 4, spellcheck: 'false' }, current.transform || ''),
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
    field('Transform', inputs.transform, 'A Rhai template making the body this webhook gets from body, attributes, eventId and correlationId; () for none. Empty: the body as it is.'),
    transformTrial(catalog, inputs),
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
