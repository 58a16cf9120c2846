// Plain words for what the engine returns: a child's display name, an error, a per-record message.
import {h} from './dom.js';
import {t, has, term} from '../i18n.js';

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
export function messageBlock(message, actions = []) {
  const {kind, code} = message;
  const what = has(`message.${kind}.${code}`) ? t(`message.${kind}.${code}`)
    : (kind === 'conflict' ? t('message.conflict.default') : message.message || t('message.rejected.default'));
  const todo = has(`message.todo.${code}`) ? t(`message.todo.${code}`) : t(`message.todo.${kind}`);
  const fields = Array.isArray(message.fields) ? message.fields
    : Object.keys(message.fields || message.errors || {});
  return h('div', {class: `message ${kind}`},
    h('p', {class: 'message-what'}, h('strong', {}, t(`message.${kind}.title`)), ' ', what),
    fields.length ? h('p', {}, t('message.fields', {fields: fields.map(fieldLabel).join(', ')})) : null,
    h('p', {class: 'message-todo'}, todo),
    actions.length ? h('div', {class: 'actions'}, actions) : null);
}

export function stageText(stage) {
  return term('stage', stage);
}
