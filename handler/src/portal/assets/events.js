// Events: the catalog and the mapping table as the API documents them, the filter tester (the engine's own
// routing, through POST /events/preview), publishing, and the events that were refused.
import { h, fill, json, time, field, button } from './dom.js';
import { call, attempt, say, showError, Problem, webhookLink, operatorOnly } from './api.js';

function when(condition) {
  if (condition === 'always') return 'always';
  if (condition && condition.fieldEquals) return `payload.${condition.fieldEquals[0]} is "${condition.fieldEquals[1]}"`;
  return JSON.stringify(condition);
}

function source(value) {
  if (value.webhookAttribute) return `the webhook's attribute ${value.webhookAttribute}`;
  if (value.field) return `payload.${value.field}`;
  return JSON.stringify(value);
}

export async function catalogPage(main) {
  const catalog = await attempt(() => call('GET', '/events/catalog'));
  if (!catalog) return;
  const cell = (label, ...content) => h('td', { 'data-label': label }, ...content);
  const events = catalog.events.map((e) => h('article', { class: 'event', id: `event-${e.name.replace(/[^a-z0-9-]/gi, '-')}` },
    h('h3', {}, h('code', {}, e.name), ' ', h('span', { class: `badge ${e.kind === 'public' ? 'good' : 'neutral'}` }, e.kind)),
    h('p', {}, e.description),
    e.requiredAttributes && e.requiredAttributes.length > 0 &&
      h('p', {}, 'Delivered to webhooks with the attributes ', e.requiredAttributes.map((a) => h('code', {}, a)), '.'),
    e.fields.length > 0
      ? h('ul', {}, e.fields.map((f) => h('li', {}, h('code', {}, f.name), ` (${f.type}): ${f.description}`)))
      : h('p', { class: 'hint' }, 'No payload fields.'),
    h('details', {}, h('summary', {}, 'Payload JSON Schema'), json(e.schema, `${e.name} payload schema`)),
    h('details', {}, h('summary', {}, 'Sample event'), json(e.example, `${e.name} sample`))));
  const mappings = h('table', { class: 'cards' },
    h('caption', {}, 'Non-public events become public events as this table says'),
    h('thead', {}, h('tr', {}, ['From', 'When', 'To', 'For each', 'Payload'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, catalog.mappings.map((m) => h('tr', {},
      cell('From', h('code', {}, m.from)),
      cell('When', when(m.when)),
      cell('To', h('code', {}, m.to)),
      cell('For each', m.forEach && m.forEach.webhookAttribute ? `webhook with the attribute ${m.forEach.webhookAttribute}` : 'webhook'),
      cell('Payload', h('ul', {}, Object.entries(m.payload).map(([k, v]) => h('li', {}, h('code', {}, k), ` ← ${source(v)}`))))))));
  fill(main, h('h1', {}, 'Events and mapping'),
    h('section', {}, h('h2', {}, 'Mapping table'), mappings),
    h('section', {}, h('h2', {}, 'Catalog'), events));
}

function deliveriesTable(caption, deliveries) {
  const cell = (label, ...content) => h('td', { 'data-label': label }, ...content);
  return h('table', { class: 'cards preview' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ['Webhook', 'Event', 'Body it receives'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, deliveries.map((d) => h('tr', {},
      cell('Webhook', h('a', { href: webhookLink(d.webhookId) }, d.webhookId)), cell('Event', h('code', {}, d.event)), cell('Body it receives', json(d.body, 'Body'))))));
}

export async function testerPage(main) {
  const catalog = await call('GET', '/events/catalog').catch(() => ({ events: [] }));
  const samples = h('select', { name: 'sample' }, h('option', { value: '' }, 'Choose…'),
    catalog.events.map((e) => h('option', { value: e.name }, e.name)));
  const event = h('textarea', { name: 'event', rows: 8, spellcheck: 'false' });
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  samples.addEventListener('change', () => {
    const chosen = catalog.events.find((e) => e.name === samples.value);
    if (chosen) event.value = JSON.stringify(chosen.example, null, 2);
  });
  const body = () => {
    try { return JSON.parse(event.value); } catch (error) {
      showError(new Problem({ title: 'Not sent', detail: 'the event is not valid JSON', problems: [{ path: 'body', message: error.message }] }));
      return undefined;
    }
  };
  const preview = async () => {
    const sent = body();
    if (sent === undefined) return;
    const answer = await attempt(() => call('POST', '/events/preview', sent));
    if (!answer) return fill(results);
    fill(results,
      h('h2', {}, `${answer.event}: ${answer.deliveries.length} deliver${answer.deliveries.length === 1 ? 'y' : 'ies'}`),
      answer.deliveries.length
        ? deliveriesTable('The webhooks it reaches, each with the exact body', answer.deliveries)
        : h('p', { class: 'empty' }, 'It reaches no webhook.'),
      answer.unsent.length > 0 && deliveriesTable('Kept by the webhook\u2019s transform (logged as filtered, or dead with its error)', answer.unsent),
      answer.skipped.length > 0 && deliveriesTable('Disabled webhooks it would reach (logged as skipped)', answer.skipped));
  };
  const publish = async () => {
    const sent = body();
    if (sent === undefined) return;
    const accepted = await attempt(() => call('POST', '/events', sent));
    if (accepted) say(`Published as ${accepted.id}${accepted.deliveries === undefined ? '' : `: ${accepted.deliveries} deliveries`}.`);
  };
  fill(main, h('h1', {}, 'Filter tester'),
    h('p', {}, 'See which webhooks an event reaches and the body each receives, as the dispatcher would route it now: nothing is sent until you publish.'),
    field('Sample event from the catalog', samples),
    field('Event (JSON)', event, 'An event as internal services send it: {"name": …, "payload": {…}}.'),
    h('div', { class: 'actions' }, button('See where it goes', preview, { class: 'primary' }), operatorOnly(button('Publish it', publish))),
    results);
}

export async function rejectedPage(main) {
  const items = [];
  let cursor = null;
  const list = h('div', { class: 'rejected' });
  const more = async () => {
    const query = new URLSearchParams({ limit: '50' });
    if (cursor) query.set('cursor', cursor);
    const page = await attempt(() => call('GET', `/events/rejected?${query}`));
    if (!page) return;
    items.push(...page.items);
    cursor = page.nextCursor || null;
    fill(list,
      items.length === 0 && h('p', { class: 'empty' }, 'No event was rejected.'),
      items.map((r) => h('article', { class: 'rejected-event' },
        h('h2', {}, time(r.receivedAt), ' ', h('code', {}, r.id)),
        h('ul', { class: 'problems' }, r.problems.map((p) => h('li', {}, h('code', {}, p.path), ': ', p.message))),
        h('details', {}, h('summary', {}, 'What was received'), json(r.body, 'Body received')))),
      cursor && button('Show more', more));
  };
  fill(main, h('h1', {}, 'Rejected events'), h('p', {}, 'Events the dispatcher refused, newest first, with every reason.'), list);
  await more();
}
