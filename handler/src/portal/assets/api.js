// The API, as the page calls it: the credential from sessionStorage (the operator's key in x-functions-key, a
// tenant's token as Authorization: Bearer), JSON both ways, and every error turned into its problem details
// (RFC 9457), which the page shows as they are.
import { h, fill } from './dom.js';

const API = '/api/v1';
const KEY = 'dispatcher.apiKey';

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** Who is signed in, as `GET /info` says: the operator (tenant null), or a tenant, perhaps read-only. */
export const session = { tenant: null, readOnly: false };

/** `element` when the signed-in credential may change things; nothing for a read-only one. */
export const changes = (element) => (session.readOnly ? null : element);

/** `element` for the operator only (tenants do not see the operator's screens and actions). */
export const operatorOnly = (element) => (session.tenant ? null : element);

/** The API path of webhook `id` (and of something under it), and the page that shows it; likewise a delivery. */
export const webhookPath = (id, rest = '') => `/webhooks/${encodeURIComponent(id)}${rest}`;
export const webhookLink = (id) => `#/webhooks/${encodeURIComponent(id)}`;
export const deliveryPath = (id, rest = '') => `/deliveries/${encodeURIComponent(id)}${rest}`;
export const deliveryLink = (id) => `#/deliveries/${encodeURIComponent(id)}`;

/** An API error: the problem details it answered (or made up for a network failure). */
export class Problem extends Error {
  constructor(details) {
    super(details.detail || details.title);
    this.details = details;
  }
}

/** Calls the API; resolves to the parsed answer (null for 204), rejects with a Problem. */
export async function call(method, path, body, contentType = 'application/json') {
  const headers = { accept: 'application/json, application/problem+json' };
  const key = apiKey.get();
  if (key && key.startsWith('dtk_')) headers.authorization = `Bearer ${key}`;
  else if (key) headers['x-functions-key'] = key;
  const init = { method, headers };
  if (body !== undefined) {
    headers['content-type'] = contentType;
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (error) {
    throw new Problem({ title: 'No answer', status: 0, detail: `the dispatcher did not answer (${error.message})`, problems: [] });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const details = data && typeof data === 'object' && data.title ? data
      : { title: response.statusText || 'Error', status: response.status, detail: text.slice(0, 500), problems: [] };
    throw new Problem(details);
  }
  return data;
}

/** Shows an error from the API (or any other) in the page's alert region, with every problem and its place. */
export function showError(error) {
  const region = document.getElementById('alert');
  const details = error instanceof Problem ? error.details : { title: 'Error', detail: String(error && error.message || error), problems: [] };
  fill(region,
    h('h2', {}, `${details.title}${details.status ? ` (HTTP ${details.status})` : ''}`),
    h('p', { class: 'detail' }, details.detail || ''),
    details.problems && details.problems.length > 0 && h('ul', { class: 'problems' },
      details.problems.map((p) => h('li', {}, h('code', {}, p.path), ': ', p.message))),
    details.type && h('p', { class: 'type' }, 'Type: ', h('code', {}, details.type)),
    h('button', { type: 'button', class: 'quiet', onclick: () => clearError() }, 'Dismiss'));
  region.hidden = false;
  region.focus();
}

export function clearError() {
  const region = document.getElementById('alert');
  region.hidden = true;
  region.replaceChildren();
}

/** Says what just happened, for everyone (the region is aria-live). */
export function say(text) {
  fill(document.getElementById('notice'), text);
}

let next = '';

/** Says `text` once the page has moved to the view an action leads to (a move clears what was said). */
export function sayNext(text) {
  next = text;
}

/** What `sayNext` left to say, said once. */
export function takeNext() {
  const text = next;
  next = '';
  return text;
}

/** Runs an API action; an error is shown rather than thrown. Resolves to the answer, or undefined on error. */
export async function attempt(action) {
  try {
    const answer = await action();
    clearError();
    return answer;
  } catch (error) {
    showError(error);
    return undefined;
  }
}
