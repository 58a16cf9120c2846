// Labelled form controls. Each returns {row, get()} so a form reads back plain values; every control
// has a visible <label> (or a fieldset legend) and an error slot tied to it by aria-describedby.
import {h, uid} from './dom.js';
import {t, term} from '../i18n.js';

function errorSlot(id) {
  return h('p', {class: 'field-error', id: `${id}-error`, hidden: true});
}

function row(id, label, control, hint) {
  const hintId = hint ? `${id}-hint` : null;
  control.setAttribute('aria-describedby', [hintId, `${id}-error`].filter(Boolean).join(' '));
  return h('div', {class: 'field', 'data-field': control.name},
    h('label', {for: id}, label), hint ? h('p', {class: 'hint', id: hintId}, hint) : null, control,
    errorSlot(id));
}

export function text(name, label, {value = '', required = false, hint, type = 'text', ...attrs} = {}) {
  const id = uid(name);
  const input = h('input', {id, name, type, required, value: value ?? '', ...attrs});
  return {name, row: row(id, label, input, hint), get: () => input.value.trim() || null, input};
}

export function date(name, label, {value, required = false, max, hint} = {}) {
  return text(name, label, {value, required, max, hint, type: 'date'});
}

export function area(name, label, {value = '', hint} = {}) {
  const id = uid(name);
  const input = h('textarea', {id, name, rows: 3});
  input.value = value ?? '';
  return {name, row: row(id, label, input, hint), get: () => input.value.trim() || null, input};
}

// A <select> over a vocabulary list; `blank` adds an empty first choice for optional fields.
export function choice(name, label, list, values, {value, blank = true, required = false, hint} = {}) {
  const id = uid(name);
  const select = h('select', {id, name, required},
    blank ? h('option', {value: ''}, t('form.choose')) : null,
    values.map((v) => h('option', {value: v, selected: v === value}, term(list, v))));
  return {name, row: row(id, label, select, hint), get: () => select.value || null, input: select};
}

// Radio buttons in a fieldset; options: [[value, label], ...]. Values are strings on the page.
export function radios(name, legend, options, {value, onchange} = {}) {
  const id = uid(name);
  const inputs = options.map(([v, label]) => {
    const input = h('input', {type: 'radio', name: id, value: v, id: uid(name), checked: v === value,
      onchange});
    return h('label', {class: 'choice', for: input.id}, input, h('span', {}, label));
  });
  const set = h('fieldset', {class: 'field', 'data-field': name, 'aria-describedby': `${id}-error`},
    h('legend', {}, legend), inputs, errorSlot(id));
  return {name, row: set, get: () => set.querySelector('input:checked')?.value ?? null};
}

// Checkboxes for a list field (concerns); get() returns the ticked values.
export function checks(name, legend, list, values, {value = []} = {}) {
  const id = uid(name);
  const boxes = values.map((v) => {
    const input = h('input', {type: 'checkbox', value: v, id: uid(name), checked: value.includes(v)});
    return h('label', {class: 'choice', for: input.id}, input, h('span', {}, term(list, v)));
  });
  const set = h('fieldset', {class: 'field', 'data-field': name, 'aria-describedby': `${id}-error`},
    h('legend', {}, legend), boxes, errorSlot(id));
  return {name, row: set, get: () => [...set.querySelectorAll('input:checked')].map((b) => b.value)};
}

// Show field errors (field -> [messages]) under their controls and a summary at the top, then move
// focus to the summary so a screen-reader user hears what went wrong.
export function showErrors(form, summary, errors) {
  for (const slot of form.querySelectorAll('.field-error')) { slot.hidden = true; slot.textContent = ''; }
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
  const names = Object.keys(errors || {});
  summary.hidden = names.length === 0;
  summary.replaceChildren();
  if (!names.length) return;
  summary.append(h('h2', {}, t('form.errors_title')));
  const list = h('ul');
  for (const name of names) {
    const messages = [].concat(errors[name]).map(String);
    const wrap = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    const slot = wrap?.querySelector('.field-error');
    if (slot) { slot.textContent = messages.join(' '); slot.hidden = false; }
    wrap?.querySelector('input, select, textarea')?.setAttribute('aria-invalid', 'true');
    const label = wrap?.querySelector('label, legend')?.textContent || name;
    list.append(h('li', {}, `${label}: ${messages.join(' ')}`));
  }
  summary.append(list);
  summary.focus();
}

// A form: controls in order, a submit button, an error summary; onsubmit gets the values by name.
export function form(controls, submitLabel, onsubmit) {
  const summary = h('div', {class: 'error-summary', role: 'alert', tabindex: -1, hidden: true});
  const button = h('button', {type: 'submit', class: 'primary'}, submitLabel);
  const el = h('form', {novalidate: true}, summary, controls.map((c) => c.row), button);
  el.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(controls.filter((c) => c.name).map((c) => [c.name, c.get()]));
    button.disabled = true;
    try {
      const errors = await onsubmit(values);
      if (errors) showErrors(el, summary, errors);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}
