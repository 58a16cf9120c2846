// A child's page: who, stage, what needs attention (messages, alerts), planned visits, last visits and
// the timeline of everything recorded.
// (Referrals: ui/referrals.js.)
import * as engine from '../engine.js';
import {h} from './dom.js';
import {formatDate, t, term} from '../i18n.js';
import {alertItem} from './day.js';
import {referralsSection} from './referrals.js';
import {childName, errorText, messageBlock} from './words.js';

const FIX_ROUTES = {child: 'edit', followup: 'visit', stage_transition: 'stage', assessment: 'assessment',
  service: 'service'};

function fixHref(childId, entity, record, mutationId) {
  const route = FIX_ROUTES[entity];
  if (!route) return null;
  const target = entity === 'child' ? '' : `/${record.id}`;
  return `#/child/${childId}/${route}${target}?fix=${encodeURIComponent(mutationId)}`;
}

// What needs attention on a page: each record's conflicts and refusals, with "correct" where
// `hrefFor(entity, record, mutationId)` names a form for it, and "dismiss" for a refusal.
export function attention(ctx, entries, hrefFor) {
  const blocks = [];
  for (const [entity, record] of entries) {
    for (const message of record._messages || []) {
      const actions = [];
      const href = message.kind === 'rejected' && message.mutation_id
        && !['out_of_scope', 'record_deleted', 'id_conflict'].includes(message.code)
        ? hrefFor(entity, record, message.mutation_id) : null;
      if (href) actions.push(h('a', {class: 'button secondary', href}, t('message.fix')));
      // A conflict stays until a person decides on the web (the protocol sends the outcome by pull,
      // not a signal), so only a refusal can be dismissed here.
      if (message.kind === 'rejected' && message.mutation_id) {
        actions.push(h('button', {type: 'button', class: 'secondary', onclick: async () => {
          try {
            await engine.dismiss(message.mutation_id);
            ctx.refresh();
          } catch (error) {
            ctx.flash(errorText(error), 'alert');
          }
        }}, t('message.dismiss')));
      }
      blocks.push(h('li', {}, h('p', {class: 'meta'}, t(`entity.${entity}`)), messageBlock(message, actions, entity)));
    }
  }
  return blocks.length ? h('section', {class: 'attention'}, h('h2', {}, t('child.attention')),
    h('ul', {class: 'cards'}, blocks)) : null;
}

function visitLine(f) {
  const seen = f.seen === true ? t('visit.seen_yes')
    : f.seen === false ? `${t('visit.seen_no')}: ${term('not_seen_reason', f.not_seen_reason)}` : term('followup_status', f.status);
  return [seen, f.wellbeing ? `${t('field.wellbeing')}: ${term('wellbeing', f.wellbeing)}` : null,
    f.risk_level ? `${t('field.risk_level')}: ${term('risk', f.risk_level)}` : null,
    f.concerns?.length ? `${t('field.concerns')}: ${f.concerns.map((c) => term('concern', c)).join(', ')}` : null]
    .filter(Boolean).join(' · ');
}

function timeline(records) {
  const events = [
    ...records.stage_transition.map((r) => [r.occurred_on, t('timeline.stage', {stage: term('stage', r.to_stage)}), r]),
    ...records.assessment.map((r) => [r.assessed_on, t('timeline.assessment', {kind: term('assessment_kind', r.kind)}), r]),
    ...records.service.map((r) => [r.started_on || r.ended_on, t('timeline.service',
      {type: term('service_type', r.type), status: term('service_status', r.status)}), r]),
    ...records.followup.filter((r) => r.status !== 'scheduled').map((r) => [r.completed_on || r.due_on,
      `${term('followup_kind', r.kind)}: ${visitLine(r)}`, r]),
    ...records.consent.map((r) => [r.given_on, t('timeline.consent',
      {purpose: term('consent_purpose', r.purpose), giver: term('consent_giver', r.given_by)}), r]),
  ].sort((a, b) => String(b[0] || '').localeCompare(String(a[0] || '')));
  return h('ol', {class: 'timeline'}, events.map(([day, line, record]) => h('li', {},
    h('span', {class: 'when'}, day ? formatDate(day) : t('timeline.undated')), ' ', line,
    record._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null,
    record._messages?.some((m) => m.kind === 'rejected') ? h('span', {class: 'badge warn'}, t('status.rejected_badge')) : null)));
}

export async function childView(ctx, {id}) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const entities = ['stage_transition', 'assessment', 'service', 'followup', 'consent', 'alert', 'referral'];
  const lists = await Promise.all(entities.map((e) => engine.list(e, {childId: id})));
  const records = Object.fromEntries(entities.map((e, i) => [e, lists[i]]));
  const scheduled = records.followup.filter((f) => f.status === 'scheduled')
    .sort((a, b) => String(a.due_on).localeCompare(String(b.due_on)));
  const done = records.followup.filter((f) => f.status !== 'scheduled' && f.kind === 'visit')
    .sort((a, b) => String(b.completed_on || b.due_on).localeCompare(String(a.completed_on || a.due_on))).slice(0, 3);
  const openAlerts = records.alert.filter((a) => a.status === 'open');
  const entries = [['child', child], ...entities.flatMap((e) => records[e].map((r) => [e, r]))];
  const facts = [
    [t('field.case_code'), child.case_code],
    [t('field.stage'), term('stage', child.stage)],
    [t('field.risk_level'), term('risk', child.risk_level)],
    [t('field.sex'), term('sex', child.sex)],
    [t('field.village'), child.village],
    [t('field.date_of_birth'), child.date_of_birth ? formatDate(child.date_of_birth) : child.birth_year],
  ].filter(([, v]) => v != null && v !== '');
  return h('div', {},
    h('h1', {tabindex: -1}, childName(child)),
    child._pending ? h('p', {class: 'badge'}, t('status.pending_badge')) : null,
    h('dl', {class: 'facts'}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    attention(ctx, entries, (entity, record, mutationId) => fixHref(id, entity, record, mutationId)),
    h('nav', {class: 'actions', 'aria-label': t('child.actions')},
      h('a', {class: 'button primary', href: `#/child/${id}/visit`}, t('child.record_visit')),
      h('a', {class: 'button secondary', href: `#/child/${id}/stage`}, t('child.move_stage')),
      h('a', {class: 'button secondary', href: `#/child/${id}/assessment`}, t('child.add_assessment')),
      h('a', {class: 'button secondary', href: `#/child/${id}/service`}, t('child.add_service')),
      h('a', {class: 'button secondary', href: `#/child/${id}/edit`}, t('child.edit'))),
    h('section', {}, h('h2', {}, t('child.alerts')),
      openAlerts.length ? h('ul', {class: 'cards'}, openAlerts.map((a) => alertItem(ctx, a, null)))
        : h('p', {class: 'empty'}, t('child.no_alerts'))),
    referralsSection(ctx, id, records.referral),
    h('section', {}, h('h2', {}, t('child.planned')),
      scheduled.length ? h('ul', {class: 'cards'}, scheduled.map((f) => h('li', {class: 'card'},
        h('a', {class: 'card-link', href: `#/child/${id}/visit/${f.id}`},
          h('span', {class: 'card-title'}, term('followup_kind', f.kind)),
          h('span', {class: 'meta'}, t('day.due_on', {date: formatDate(f.due_on)}))))))
        : h('p', {class: 'empty'}, t('child.none_planned'))),
    h('section', {}, h('h2', {}, t('child.last_visits')),
      done.length ? h('ul', {class: 'cards'}, done.map((f) => h('li', {class: 'card'},
        h('p', {class: 'card-title'}, formatDate(f.completed_on || f.due_on)), h('p', {}, visitLine(f)))))
        : h('p', {class: 'empty'}, t('child.no_visits'))),
    h('section', {}, h('h2', {}, t('child.timeline')), timeline(records)));
}
