// Building the page from data without innerHTML: every text an API returns lands in a text node, never in markup.

/** An element: h('a', {href: '#/x', class: 'button'}, 'text', child, [more]). `on*` attributes take functions. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `element` holds. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Pretty JSON in a <pre>, for bodies, schemas and filters. */
export function json(value, label) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
  return h('pre', { class: 'json', tabindex: '0', 'aria-label': label }, text);
}

/** "3 min ago"-style local time with the exact ISO time as a tooltip. */
export function time(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, date.toLocaleString());
}

/** A labelled form field; `input` is the control (its id ties the label to it). */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintId = hint ? `${id}-hint` : undefined;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint && h('p', { class: 'hint', id: hintId }, hint));
}

/** A button that runs an async action, disabled while it runs. */
export function button(label, action, attributes = {}) {
  const element = h('button', { type: 'button', ...attributes }, label);
  element.addEventListener('click', async () => {
    element.disabled = true;
    try { await action(); } finally { element.disabled = false; }
  });
  return element;
}

/** Percent with one decimal, or a dash. */
export function percent(rate) {
  return rate === undefined || rate === null ? '–' : `${(rate * 100).toFixed(1)} %`;
}

/** Asks before something that cannot be undone, in a modal dialog; resolves to true when confirmed. */
export function confirmAction(question, actionLabel) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'confirm-question' });
    const close = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    fill(dialog,
      h('p', { id: 'confirm-question' }, question),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'quiet', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => close(true) }, actionLabel)));
    dialog.addEventListener('cancel', () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}
