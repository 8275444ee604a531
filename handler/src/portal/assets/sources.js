// The operator's view of the inbound sources: where providers post their webhooks and how each request is
// verified. Create one, see its endpoint (with a copy button), disable it, rotate its secrets, delete it.
// Secrets go in and never come back: the API shows how many a source holds.
import { h, fill, time, field, button, confirmAction } from './dom.js';
import { call, attempt, say, sayNext } from './api.js';

const path = (id) => `/sources/${encodeURIComponent(id)}`;
const link = (id) => `#/sources/${encodeURIComponent(id)}`;
const TYPES = ['stripe', 'github', 'standard-webhooks', 'hmac', 'basic', 'api-key'];
/** What each type needs besides its secrets. */
const NEEDS = { hmac: ['header'], 'api-key': ['header'], basic: ['username'] };

/** One secret a line, at most two (the second during a rotation). */
const secretsOf = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);

/** The endpoint as the provider reaches it: beside this page. */
const endpointUrl = (source) => `${location.origin}${source.endpoint}`;

function secretsField(required) {
  const input = h('textarea', { rows: 2, spellcheck: 'false', autocomplete: 'off', required });
  return [input, field('Signing secrets', input, 'The provider\'s secret, one a line; two during a rotation (either verifies). Never shown again.')];
}

export async function sourceList(main) {
  const sources = await attempt(() => call('GET', '/sources'));
  const id = h('input', { type: 'text', required: true, pattern: '[A-Za-z0-9_-]{1,64}', spellcheck: 'false' });
  const type = h('select', {}, TYPES.map((t) => h('option', { value: t }, t)));
  const header = h('input', { type: 'text', spellcheck: 'false' });
  const username = h('input', { type: 'text', spellcheck: 'false' });
  const [secrets, secretsRow] = secretsField(true);
  const headerRow = field('Header', header, 'The header that carries the signature (hmac) or the key (api-key).');
  const usernameRow = field('Username', username, 'The Basic credentials\' user name.');
  const shown = () => {
    headerRow.hidden = !(NEEDS[type.value] || []).includes('header');
    usernameRow.hidden = !(NEEDS[type.value] || []).includes('username');
  };
  type.addEventListener('change', shown);
  shown();
  const form = h('form', { class: 'panel' },
    h('h2', {}, 'Create a source'),
    field('Id', id, 'Letters, digits, _ or -: its endpoint is /api/v1/in/<id> and its events <id>:<type>.'),
    field('Verification', type), headerRow, usernameRow, secretsRow,
    h('button', { type: 'submit', class: 'primary' }, 'Create'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const verify = { type: type.value, secrets: secretsOf(secrets.value) };
    if (!headerRow.hidden) verify.header = header.value.trim();
    if (!usernameRow.hidden) verify.username = username.value.trim();
    const created = await attempt(() => call('POST', '/sources', { id: id.value.trim(), verify }));
    if (created) { sayNext(`Source ${created.id} created.`); location.hash = link(created.id); }
  });
  const rows = (sources || []).map((s) => h('tr', {},
    h('td', { 'data-label': 'Source' }, h('a', { href: link(s.id) }, s.id)),
    h('td', { 'data-label': 'Verification' }, s.verify.type),
    h('td', { 'data-label': 'Events' }, h('code', {}, `${s.id}:*`)),
    h('td', { 'data-label': 'State' }, s.disabled ? 'disabled' : 'enabled')));
  fill(main, h('h1', {}, 'Sources'),
    h('p', {}, 'Where providers (Stripe, GitHub, your integrators) post their webhooks. What verifies is published as ',
      h('code', {}, '<source>:<type>'), ' for the webhooks subscribed to it.'),
    rows.length ? h('table', { class: 'cards' },
      h('thead', {}, h('tr', {}, ['Source', 'Verification', 'Events', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)) : h('p', {}, 'No source yet.'),
    form);
}

/** A source's page. */
export async function sourcePage(main, id) {
  const source = await attempt(() => call('GET', path(id)));
  if (!source) return fill(main, h('h1', {}, 'Source'), h('a', { href: '#/sources' }, 'Back to the sources'));
  const reload = () => sourcePage(main, id);
  const { secretCount, type, ...rest } = source.verify;
  const endpoint = h('input', { type: 'text', readonly: true, value: endpointUrl(source), spellcheck: 'false' });
  const details = h('dl', { class: 'settings' },
    h('dt', {}, 'Verification'), h('dd', {}, type, Object.keys(rest).length ? ` (${JSON.stringify(rest)})` : ''),
    h('dt', {}, 'Secrets'), h('dd', {}, `${secretCount} held`),
    h('dt', {}, 'Tolerance'), h('dd', {}, source.tolerance),
    h('dt', {}, 'Events'), h('dd', {}, h('code', {}, `${source.id}:<type>`), ', all of them: ', h('code', {}, `${source.id}:*`)),
    h('dt', {}, 'Changed'), h('dd', {}, time(source.updatedAt)));
  const endpointPanel = h('div', { class: 'once' }, field('Endpoint (give it to the provider)', endpoint),
    button('Copy', async () => { await navigator.clipboard.writeText(endpoint.value); say('Endpoint copied.'); }));
  // A replacement without secrets keeps the stored ones.
  const replace = (changes) => attempt(() => call('PUT', path(id),
    { verify: { type, ...rest, ...(changes.verify || {}) }, tolerance: source.tolerance, disabled: source.disabled, ...changes.top }));
  const toggle = button(source.disabled ? 'Enable' : 'Disable', async () => {
    const saved = await replace({ top: { disabled: !source.disabled } });
    if (saved) { await reload(); say(saved.disabled ? 'Source disabled: it answers 404.' : 'Source enabled.'); }
  });
  const [secrets, secretsRow] = secretsField(true);
  const rotate = h('form', { class: 'panel' }, h('h2', {}, 'Rotate the secrets'), secretsRow,
    h('p', {}, 'During a rotation give both, the old one and the new one; remove the old one once the provider signs with the new.'),
    h('button', { type: 'submit' }, 'Save the secrets'));
  rotate.addEventListener('submit', async (event) => {
    event.preventDefault();
    const saved = await replace({ verify: { secrets: secretsOf(secrets.value) } });
    if (saved) { await reload(); say(`Secrets saved: ${saved.verify.secretCount} held.`); }
  });
  const remove = button('Delete', async () => {
    if (!await confirmAction(`Delete ${id}? Its provider's requests are answered 404 from now on.`, 'Delete')) return;
    const done = await attempt(() => call('DELETE', path(id)));
    if (done !== undefined) { sayNext(`Source ${id} deleted.`); location.hash = '#/sources'; }
  }, { class: 'danger' });
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/sources' }, 'Sources'), ' / ', source.id),
    h('h1', {}, source.id),
    endpointPanel, details, h('div', { class: 'actions' }, toggle, remove), rotate);
}
