// The operator's view of tenants: create one with its grants, change them, issue a portal link (with a copy
// button) or a token, and list and revoke its tokens. Tenants themselves never see this screen.
import { h, fill, time, field, button, confirmAction } from './dom.js';
import { call, attempt, say, sayNext } from './api.js';

const path = (id, rest = '') => `/tenants/${encodeURIComponent(id)}${rest}`;
const link = (id) => `#/tenants/${encodeURIComponent(id)}`;

/** `serviceId: a, b` lines to `{"serviceId": ["a", "b"]}`, and back. */
const grantsOf = (text) => Object.fromEntries(text.split('\n').map((line) => line.split(':'))
  .filter(([name, values]) => name.trim() && values !== undefined)
  .map(([name, values]) => [name.trim(), values.split(',').map((v) => v.trim()).filter(Boolean)]));
const grantsText = (grants) => Object.entries(grants || {}).map(([name, values]) => `${name}: ${values.join(', ')}`).join('\n');

function grantsField(grants) {
  const input = h('textarea', { rows: 3, spellcheck: 'false' });
  input.value = grantsText(grants);
  return [input, field('Grants', input, 'One attribute a line: serviceId: aServiceId12345, aServiceId67890. Its webhooks may hold only these values; name is free.')];
}

export async function tenantList(main) {
  const tenants = await attempt(() => call('GET', '/tenants'));
  const [grants, grantsRow] = grantsField({});
  const id = h('input', { type: 'text', pattern: '[A-Za-z0-9_-]{1,64}', spellcheck: 'false' });
  const name = h('input', { type: 'text', required: true });
  const max = h('input', { type: 'number', min: 0, max: 10000, value: 25 });
  const form = h('form', { class: 'panel' },
    h('h2', {}, 'Create a tenant'),
    field('Id', id, 'Letters, digits, _ or -; made for you when empty.'), field('Name', name), grantsRow,
    field('Most webhooks', max), h('button', { type: 'submit', class: 'primary' }, 'Create'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { name: name.value, grants: grantsOf(grants.value), maxWebhooks: Number(max.value) };
    if (id.value.trim()) body.id = id.value.trim();
    const created = await attempt(() => call('POST', '/tenants', body));
    if (created) { sayNext(`Tenant ${created.id} created.`); location.hash = link(created.id); }
  });
  const rows = (tenants || []).map((t) => h('tr', {},
    h('td', { 'data-label': 'Tenant' }, h('a', { href: link(t.id) }, t.name), ' ', h('code', {}, t.id)),
    h('td', { 'data-label': 'Grants' }, grantsText(t.grants) || 'none'),
    h('td', { 'data-label': 'Most webhooks' }, String(t.maxWebhooks)),
    h('td', { 'data-label': 'State' }, t.disabled ? 'disabled' : 'enabled')));
  fill(main, h('h1', {}, 'Tenants'),
    h('p', {}, 'Integrators who register and watch their own webhooks with a token or a portal link.'),
    rows.length ? h('table', { class: 'cards' },
      h('thead', {}, h('tr', {}, ['Tenant', 'Grants', 'Most webhooks', 'State'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)) : h('p', {}, 'No tenant yet.'),
    form);
}

/** A secret shown once, with a button that copies it. */
function shownOnce(label, value) {
  const input = h('input', { type: 'text', readonly: true, value, spellcheck: 'false' });
  return h('div', { class: 'once' }, field(label, input, 'Shown once: copy it now.'),
    button('Copy', async () => { await navigator.clipboard.writeText(value); say(`${label} copied.`); }));
}

/** A tenant's page; `shown`, what was just issued (kept across the redraw that lists it). */
export async function tenantPage(main, id, shown = []) {
  const [tenant, tokens] = await Promise.all([attempt(() => call('GET', path(id))), call('GET', path(id, '/tokens')).catch(() => [])]);
  if (!tenant) return fill(main, h('h1', {}, 'Tenant'), h('a', { href: '#/tenants' }, 'Back to the tenants'));
  const reload = (keep = []) => tenantPage(main, id, keep);
  const issued = h('div', { 'aria-live': 'polite' }, shown);
  const [grants, grantsRow] = grantsField(tenant.grants);
  const max = h('input', { type: 'number', min: 0, max: 10000, value: tenant.maxWebhooks });
  const disabled = h('input', { type: 'checkbox', checked: tenant.disabled });
  const edit = h('form', { class: 'panel' }, h('h2', {}, 'Grants and limits'), grantsRow, field('Most webhooks', max),
    h('label', { class: 'check' }, disabled, 'Disabled: its credentials are refused, its webhooks receive nothing'),
    h('button', { type: 'submit', class: 'primary' }, 'Save'));
  edit.addEventListener('submit', async (event) => {
    event.preventDefault();
    const patch = { grants: { ...Object.fromEntries(Object.keys(tenant.grants).map((k) => [k, null])), ...grantsOf(grants.value) },
      maxWebhooks: Number(max.value), disabled: disabled.checked };
    const saved = await attempt(() => call('PATCH', path(id), patch, 'application/merge-patch+json'));
    if (saved) { await reload(); say('Tenant saved.'); }
  });
  const lifetime = h('select', {}, ['1h', '8h', '1d', '7d'].map((v) => h('option', { value: v }, v)));
  const readOnly = h('input', { type: 'checkbox', checked: true });
  const portal = h('form', { class: 'panel' }, h('h2', {}, 'Portal link'),
    field('Works for', lifetime), h('label', { class: 'check' }, readOnly, 'Read-only: shows nothing that changes anything'),
    h('button', { type: 'submit' }, 'Issue a portal link'));
  portal.addEventListener('submit', async (event) => {
    event.preventDefault();
    const made = await attempt(() => call('POST', path(id, '/portal-links'), { expiresIn: lifetime.value, readOnly: readOnly.checked }));
    if (made) await reload([shownOnce('Portal link', made.url), h('p', {}, 'Works until ', time(made.expiresAt), '.')]);
  });
  const tokenName = h('input', { type: 'text', required: true });
  const token = h('form', { class: 'panel' }, h('h2', {}, 'API token'), field('What it is for', tokenName),
    h('button', { type: 'submit' }, 'Issue a token'));
  token.addEventListener('submit', async (event) => {
    event.preventDefault();
    const made = await attempt(() => call('POST', path(id, '/tokens'), { name: tokenName.value }));
    if (made) await reload([shownOnce('Token', made.token), h('p', {}, 'Works until ', time(made.expiresAt), '.')]);
  });
  const rows = (tokens || []).map((t) => h('tr', {},
    h('td', { 'data-label': 'Name' }, t.name, ' ', h('code', {}, t.id)),
    h('td', { 'data-label': 'Kind' }, `${t.kind}${t.readOnly ? ', read-only' : ''}`),
    h('td', { 'data-label': 'Expires' }, time(t.expiresAt)),
    h('td', { 'data-label': 'Revoke' }, button('Revoke', async () => {
      if (!await confirmAction(`Revoke ${t.name}? Whoever holds it is refused from now on.`, 'Revoke')) return;
      const done = await attempt(() => call('DELETE', path(id, `/tokens/${encodeURIComponent(t.id)}`)));
      if (done !== undefined) { await reload(); say('Token revoked.'); }
    }, { class: 'danger', 'aria-label': `Revoke ${t.name}` }))));
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/tenants' }, 'Tenants'), ' / ', tenant.id),
    h('h1', {}, tenant.name),
    issued, portal, token,
    h('h2', {}, 'Tokens and portal links'),
    rows.length ? h('table', { class: 'cards' },
      h('thead', {}, h('tr', {}, ['Name', 'Kind', 'Expires', 'Revoke'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows)) : h('p', {}, 'None.'),
    edit);
}
