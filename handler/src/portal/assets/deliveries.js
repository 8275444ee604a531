// Deliveries: a webhook's, newest first, filtered by status and kept up to date; each with every attempt (what
// was sent, headers and signature included, and what came back), retried from here.
import { h, fill, json, time, field, button } from './dom.js';
import { call, attempt, say, changes, webhookPath, webhookLink, deliveryPath } from './api.js';

const STATUSES = ['pending', 'retrying', 'succeeded', 'dead', 'skipped', 'filtered'];
const REFRESH_MS = 3000;
const PAGE = 50;
let timer = null;

/** Stops updating the list (when the page shows something else). */
export function stopRefreshing() {
  clearInterval(timer);
  timer = null;
}

function result(a) {
  if (a.statusCode && a.error) return `HTTP ${a.statusCode}, ${a.error}`;
  if (a.statusCode) return `HTTP ${a.statusCode}`;
  return a.error || 'no answer';
}

function attemptsTable(id, attempts) {
  if (attempts.length === 0) return h('p', { class: 'empty' }, 'No attempt yet.');
  const cell = (label, ...content) => h('td', { 'data-label': label }, ...content);
  return h('table', { class: 'cards attempts' },
    h('caption', {}, 'Attempts'),
    h('thead', {}, h('tr', {}, ['#', 'Time', 'Duration', 'Result', 'Response', 'Headers sent'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, attempts.map((a, i) => h('tr', { class: a.statusCode >= 200 && a.statusCode < 300 && !a.error ? 'ok' : 'failed' },
      cell('#', String(i + 1)),
      cell('Time', time(a.at)),
      cell('Duration', `${a.durationMs} ms`),
      cell('Result', result(a)),
      cell('Response', a.response ? h('pre', { class: 'response' }, a.response) : h('span', { class: 'hint' }, 'empty')),
      cell('Headers sent', a.headers.length
        ? h('details', { dataset: { key: `${id}:${i}` } }, h('summary', {}, `${a.headers.length} headers, signature included`),
          h('pre', { class: 'headers' }, a.headers.map((header) => `${header.name}: ${header.value}`).join('\n')),
          h('p', { class: 'hint' }, 'Then the webhook\u2019s own headers and its credentials, as configured.'))
        : '–')))));
}

/** One delivery, folded to a line until opened. */
export function deliveryCard(d, open, onChange) {
  const retry = changes(button('Retry now', async () => {
    const queued = await attempt(() => call('POST', deliveryPath(d.id, '/retry')));
    if (queued) { say(`Delivery ${d.id} queued again.`); if (onChange) await onChange(); }
  }));
  const details = h('details', { class: `delivery ${d.status}`, dataset: { id: d.id }, open },
    h('summary', {},
      h('span', { class: `badge ${d.status}` }, d.status), ' ',
      h('strong', {}, d.event), ' ', time(d.createdAt), ' ',
      h('span', { class: 'hint' }, `${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}`)),
    h('dl', { class: 'settings' },
      h('dt', {}, 'Delivery id'), h('dd', {}, h('code', {}, d.id)),
      h('dt', {}, 'Source event'), h('dd', {}, h('code', {}, d.sourceId)),
      d.correlationId && [h('dt', {}, 'Correlation id'), h('dd', {}, d.correlationId)],
      d.nextAttemptAt && [h('dt', {}, 'Next attempt'), h('dd', {}, time(d.nextAttemptAt))],
      d.deadReason && [h('dt', {}, 'Why it is dead'), h('dd', {}, d.deadReason)]),
    h('div', { class: 'actions' }, retry),
    h('h3', {}, 'Body sent'), json(d.payload, 'Body sent'),
    attemptsTable(d.id, d.attempts));
  return details;
}

/** The deliveries of webhook `id`, with their filter, updated every few seconds while shown. */
export function deliveriesSection(id) {
  const select = h('select', { name: 'status' }, h('option', { value: '' }, 'All'),
    STATUSES.map((s) => h('option', { value: s }, s)));
  const auto = h('input', { type: 'checkbox', name: 'auto', checked: true });
  const list = h('div', { class: 'deliveries', 'aria-busy': 'true' });
  let shown = PAGE;
  let drawn = null;
  // The newest `shown` deliveries, a page of PAGE after another.
  const fetchShown = async () => {
    const items = [];
    let cursor = null;
    do {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (select.value) query.set('status', select.value);
      if (cursor) query.set('cursor', cursor);
      const page = await call('GET', webhookPath(id, `/deliveries?${query}`));
      items.push(...page.items);
      cursor = page.nextCursor || null;
    } while (cursor && items.length < shown);
    return { items, nextCursor: cursor };
  };
  const load = async () => {
    const page = await attempt(fetchShown);
    if (!page) return;
    // Redrawn only when something changed: a redraw would take the keyboard focus from a button in the list.
    const text = JSON.stringify([select.value, page]);
    if (text === drawn) return;
    drawn = text;
    const open = new Set([...list.querySelectorAll('details.delivery[open]')].map((d) => d.dataset.id));
    // Folds stay as the reader left them, the headers of an attempt too.
    const openInside = new Set([...list.querySelectorAll('details[data-key][open]')].map((d) => d.dataset.key));
    fill(list,
      page.items.length === 0 && h('p', { class: 'empty' }, select.value ? `No ${select.value} delivery.` : 'No delivery yet.'),
      page.items.map((d) => deliveryCard(d, open.has(d.id), load)),
      page.nextCursor && button('Show more', async () => { shown += PAGE; await load(); }));
    for (const inner of list.querySelectorAll('details[data-key]')) inner.open = openInside.has(inner.dataset.key);
    list.setAttribute('aria-busy', 'false');
  };
  select.addEventListener('change', load);
  const schedule = () => {
    stopRefreshing();
    if (auto.checked) timer = setInterval(load, REFRESH_MS);
  };
  auto.addEventListener('change', schedule);
  load().then(schedule);
  return h('section', { class: 'deliveries-section', 'aria-labelledby': 'deliveries-title' },
    h('h2', { id: 'deliveries-title' }, 'Deliveries'),
    h('div', { class: 'controls' },
      field('Status', select),
      h('label', { class: 'check' }, auto, ' Update every 3 seconds'),
      button('Refresh', load)),
    list);
}

/** One delivery by its id (linked from a webhook's last failure). */
export async function deliveryPage(main, id) {
  const load = async () => {
    const d = await attempt(() => call('GET', deliveryPath(id)));
    if (!d) return;
    fill(main,
      h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ',
        h('a', { href: webhookLink(d.webhookId) }, d.webhookId), ' / ', d.id),
      h('h1', {}, `Delivery of ${d.event}`),
      deliveryCard(d, true, load));
  };
  await load();
}
