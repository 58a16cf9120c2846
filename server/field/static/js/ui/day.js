// The caseworker's day: open alerts first, then overdue visits, then today's.
import * as engine from '../engine.js';
import {h, todayIso} from './dom.js';
import {formatDate, t, term} from '../i18n.js';
import {childName, errorText} from './words.js';

function daysBetween(fromIso, toIso) {
  return Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 86400000);
}

function visitItem(followup, today) {
  const child = followup.child || {};
  const late = daysBetween(followup.due_on, today);
  return h('li', {class: 'card'},
    h('a', {class: 'card-link', href: `#/child/${child.id || followup.child_id}/visit/${followup.id}`},
      h('span', {class: 'card-title'}, childName(child)),
      h('span', {class: 'code'}, child.case_code || ''),
      h('span', {class: 'meta'}, term('followup_kind', followup.kind), ' · ',
        late > 0 ? t('day.overdue_by', {count: late}) : t('day.due_on', {date: formatDate(followup.due_on)})),
      followup._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null));
}

export function alertItem(ctx, alert, child) {
  const button = h('button', {type: 'button', class: 'secondary', onclick: async () => {
    button.disabled = true;
    try {
      await engine.acknowledge(alert.id);
      ctx.flash(t('alert.acknowledged'));
      ctx.refresh();
    } catch (error) {
      button.disabled = false;
      ctx.flash(errorText(error), 'alert');
    }
  }}, t('alert.acknowledge'));
  const who = child || alert.child;
  return h('li', {class: `card alert-${alert.severity || 'info'}`},
    h('p', {class: 'card-title'}, h('span', {class: 'severity'}, term('severity', alert.severity)), ' ',
      term('rule', alert.rule)),
    who ? h('a', {class: 'alert-child', href: `#/child/${who.id}`}, childName(who), ' ', h('span', {class: 'code'}, who.case_code || ''))
      : (alert.case_code ? h('span', {class: 'code'}, alert.case_code) : null),
    alert.due_on ? h('p', {class: 'meta'}, t('alert.due', {date: formatDate(alert.due_on)})) : null,
    alert.status === 'open' && !alert._pending ? button
      : h('p', {class: 'meta'}, t('alert.acknowledged_pending')));
}

function section(title, items, empty) {
  return h('section', {},
    h('h2', {}, title, ' ', h('span', {class: 'count'}, `(${items.length})`)),
    items.length ? h('ul', {class: 'cards'}, items) : h('p', {class: 'empty'}, empty));
}

export async function dayView(ctx) {
  const today = todayIso();
  const day = await engine.today(today);
  const children = new Map((await engine.children()).map((c) => [c.id, c]));
  return h('div', {},
    h('h1', {tabindex: -1}, t('day.title')),
    h('p', {class: 'subtitle'}, formatDate(today)),
    section(t('day.alerts'), day.alerts.map((a) => alertItem(ctx, a, children.get(a.child_id))), t('day.no_alerts')),
    section(t('day.overdue'), day.overdue.map((f) => visitItem(f, today)), t('day.no_overdue')),
    section(t('day.today'), day.today.map((f) => visitItem(f, today)), t('day.no_today')));
}
