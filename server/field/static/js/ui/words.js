// Plain words for what the engine returns: a child's display name, an error, a per-record message.
import {h} from './dom.js';
import {t, has} from '../i18n.js';

export function childName(child) {
  const name = [child?.given_name, child?.family_name].filter(Boolean).join(' ');
  return name || child?.case_code || t('child.unnamed');
}

export function errorText(error) {
  const code = error?.code;
  if (code === 'wrong_pin') return t('error.wrong_pin', {count: error.attemptsLeft ?? 0});
  if (code && has(`error.${code}`)) return t(`error.${code}`);
  return error?.message || t('error.unknown');
}

// Field names in a message are shown with the form's labels where the catalogue has one.
function fieldLabel(name) {
  return has(`field.${name}`) ? t(`field.${name}`) : name;
}

// A conflict or rejection: what happened and what to do, from the catalogue by code; the server's
// English message is kept as the detail when the catalogue has no words for the code.
// A code may have words of its own for one entity (`message.rejected.invalid_transition.referral`).
export function messageBlock(message, actions = [], entity = null) {
  const {kind, code} = message;
  const own = (key) => (entity && has(`${key}.${entity}`) ? `${key}.${entity}` : key);
  const what = has(`message.${kind}.${code}`) ? t(own(`message.${kind}.${code}`))
    : (kind === 'conflict' ? t('message.conflict.default') : message.message || t('message.rejected.default'));
  const todo = has(`message.todo.${code}`) ? t(own(`message.todo.${code}`)) : t(`message.todo.${kind}`);
  // A conflict names its fields; a refusal maps the fields at fault to the server's words for them.
  const errors = message.errors && typeof message.errors === 'object' ? message.errors : {};
  const fields = kind === 'conflict' ? [].concat(message.fields || []) : [];
  const said = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === 'string').join(' ') : typeof v === 'string' ? v : '');
  return h('div', {class: `message ${kind}`},
    h('p', {class: 'message-what'}, h('strong', {}, t(`message.${kind}.title`)), ' ', what),
    fields.length ? h('p', {}, t('message.fields', {fields: fields.map(fieldLabel).join(', ')})) : null,
    Object.keys(errors).length ? h('ul', {class: 'message-details'}, Object.entries(errors).map(([name, v]) =>
      h('li', {}, `${fieldLabel(name)}: ${said(v)}`))) : null,
    message.restricted_erased_at ? h('p', {}, t('message.restricted_erased')) : null,
    h('p', {class: 'message-todo'}, todo),
    actions.length ? h('div', {class: 'actions'}, actions) : null);
}
