// The page's shell: signing in with the operator's key or a tenant's token (pasted, or from a portal link's
// #token=), the sections the credential may see, and which view the address (#/...) shows.
import { h, fill, field } from './dom.js';
import { apiKey, call, showError, clearError, say, takeNext, Problem, session } from './api.js';
import { webhookList, webhookPage } from './webhooks.js';
import { webhookForm } from './webhook-form.js';
import { deliveryPage, stopRefreshing } from './deliveries.js';
import { catalogPage, testerPage, rejectedPage } from './events.js';
import { tenantList, tenantPage } from './tenants.js';
import { sourceList, sourcePage } from './sources.js';

const main = document.getElementById('main');

const routes = [
  [/^#\/webhooks\/?$/, () => webhookList(main)],
  [/^#\/webhooks\/new$/, () => webhookForm(main, null)],
  [/^#\/webhooks\/([^/]+)\/edit$/, (id) => webhookForm(main, id)],
  [/^#\/webhooks\/([^/]+)$/, (id) => webhookPage(main, id)],
  [/^#\/deliveries\/([^/]+)$/, (id) => deliveryPage(main, id)],
  [/^#\/events$/, () => catalogPage(main)],
  [/^#\/tester$/, () => testerPage(main)],
  [/^#\/rejected$/, () => rejectedPage(main)],
  [/^#\/tenants\/?$/, () => tenantList(main)],
  [/^#\/tenants\/([^/]+)$/, (id) => tenantPage(main, id)],
  [/^#\/sources\/?$/, () => sourceList(main)],
  [/^#\/sources\/([^/]+)$/, (id) => sourcePage(main, id)],
];

/** `#key=<key>` (or a portal link's `#token=<token>`) signs in at once: a fragment never reaches the server, and
 * it leaves the address bar here. */
function keyFromFragment() {
  const match = location.hash.match(/^#(?:key|token)=(.+)$/);
  if (!match) return;
  apiKey.set(decodeURIComponent(match[1]));
  history.replaceState(null, '', `${location.pathname}${location.search}#/webhooks`);
}

async function route() {
  const hash = location.hash || '#/webhooks';
  // Other fragments (the skip link's #main) are places in the page, not views.
  if (!hash.startsWith('#/')) return;
  stopRefreshing();
  clearError();
  say(takeNext());
  for (const link of document.querySelectorAll('nav a')) {
    const current = hash === link.getAttribute('href') || hash.startsWith(`${link.getAttribute('href')}/`);
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  const found = routes.map(([pattern, view]) => [hash.match(pattern), view]).find(([match]) => match);
  if (!found) {
    fill(main, h('h1', {}, 'Not found'), h('p', {}, 'No such page. '), h('a', { href: '#/webhooks' }, 'Back to the webhooks'));
    return;
  }
  const [match, view] = found;
  await view(...match.slice(1).map(decodeURIComponent));
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Webhooks portal` : 'Webhooks portal';
}

function showSections(withSignOut) {
  document.getElementById('nav').hidden = false;
  document.getElementById('sign-out').hidden = !withSignOut;
}

function signInPage(problem) {
  document.getElementById('nav').hidden = true;
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'sign-in' },
    field('API key or token', input, 'The operator key (DISPATCHER_API_KEY), or your token (dtk_…). It stays in this tab only.'),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    apiKey.set(input.value.trim());
    await start();
  });
  fill(main, h('h1', {}, 'Sign in'), form);
  document.title = 'Sign in · Webhooks portal';
  if (problem) showError(problem);
  input.focus();
}

/** Whether the dispatcher wants a key (its /info answers 401 without one), and whether ours is right. */
async function start() {
  keyFromFragment();
  let info;
  let open = true;
  try {
    // Asked without the key first: when none is needed, that answer is the info itself.
    const response = await fetch('/api/v1/info', { headers: { accept: 'application/json' } });
    open = response.status !== 401;
    if (!open && !apiKey.get()) return signInPage();
    info = open && response.ok ? await response.json() : await call('GET', '/info');
  } catch (error) {
    if (error instanceof Problem && error.details.status === 401) {
      apiKey.clear();
      return signInPage(error);
    }
    showError(error);
  }
  session.tenant = info && info.tenant ? info.tenant : null;
  session.readOnly = Boolean(info && info.readOnly);
  const who = session.tenant ? ` · signed in as ${session.tenant}${session.readOnly ? ' (read-only)' : ''}` : '';
  if (info) fill(document.getElementById('about'), `Dispatcher ${info.version} · ${info.mode} mode${who}`);
  // The operator's screens are not offered to a tenant.
  for (const link of document.querySelectorAll('nav [data-operator]')) link.closest('li').hidden = Boolean(session.tenant);
  if (open) apiKey.clear();
  showSections(!open);
  await route();
}

document.getElementById('sign-out').addEventListener('click', () => {
  apiKey.clear();
  stopRefreshing();
  history.replaceState(null, '', `${location.pathname}${location.search}`);
  signInPage();
  say('Signed out.');
});
window.addEventListener('hashchange', () => {
  if (/^#(key|token)=/.test(location.hash)) start(); else route();
});
start();
