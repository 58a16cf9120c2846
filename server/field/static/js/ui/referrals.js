// Referrals on a child's page (issue 13): each with where it stands and a button for each step the
// server allows from there (it still decides: invalid_transition); and the form that proposes one.
// A device names an outside provider: partner agencies are chosen on the web.
import * as engine from '../engine.js';
import {h} from './dom.js';
import {formatDate, t, term} from '../i18n.js';
import {area, choice, form, text} from './controls.js';
import {childName, errorText} from './words.js';
import {changed, save} from './edit.js';

const nextSteps = (status) => (engine.vocab().referral_next_steps || {})[status] || [];

function stepButton(ctx, referral, step) {
  return h('button', {type: 'button', class: 'secondary', onclick: async () => {
    try {
      // The step's day is the phone's clock when it is tapped (the mutation's recorded_at).
      await engine.record('referral', {status: step}, {id: referral.id});
      ctx.flash(t('referral.step_saved', {status: term('referral_status', step)}));
      ctx.syncSoon();
    } catch (error) {
      ctx.flash(errorText(error), 'alert');
    }
    ctx.refresh();
  }}, t(`referral.step.${step}`));
}

export function referralsSection(ctx, childId, referrals) {
  const items = referrals.map((r) => {
    const status = r.status || 'proposed';  // a proposal the server has not seen yet
    return h('li', {class: 'card'},
      h('p', {class: 'card-title'}, term('service_type', r.service_type)),
      h('p', {}, [r.provider_name, term('referral_status', status),
        r.sent_on ? t('referral.sent_on', {date: formatDate(r.sent_on)}) : null].filter(Boolean).join(' · ')),
      r._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null,
      nextSteps(status).length ? h('div', {class: 'actions'}, nextSteps(status).map((s) => stepButton(ctx, r, s))) : null);
  });
  return h('section', {}, h('h2', {}, t('child.referrals')),
    items.length ? h('ul', {class: 'cards'}, items) : h('p', {class: 'empty'}, t('child.no_referrals')),
    h('a', {class: 'button secondary', href: `#/child/${childId}/referral`}, t('child.refer')));
}

function consentInForce(consents, day) {
  return consents.some((c) => c.purpose === 'referral' && c.given_on <= day && !(c.withdrawn_on && c.withdrawn_on <= day));
}

export async function referralView(ctx, {id}, query) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const day = new Date().toISOString().slice(0, 10);
  const consented = consentInForce(await engine.list('consent', {childId: id}), day);
  const controls = [
    choice('service_type', t('field.service_type'), 'service_type', engine.vocab().service_types || [], {required: true}),
    text('provider_name', t('field.provider_name'), {required: true, maxlength: 120, hint: t('referral.provider_hint')}),
    area('reason', t('field.reason')),
  ];
  const body = form(controls, t('referral.save'), async (v) => {
    if (!v.service_type) return {service_type: [t('form.required')]};
    if (!v.provider_name) return {provider_name: [t('form.required')]};
    const result = await save(ctx, 'referral', changed({child_id: id, ...v}), {fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(t('referral.saved'));
    ctx.syncSoon();
    ctx.go(`#/child/${id}`);
    return null;
  });
  return h('div', {},
    h('h1', {tabindex: -1}, t('referral.title')),
    h('p', {class: 'subtitle'}, childName(child), ' ', h('span', {class: 'code'}, child.case_code || '')),
    consented ? null : h('p', {class: 'message rejected'}, t('referral.no_consent')),
    body,
    h('a', {class: 'button secondary', href: `#/child/${id}`}, t('form.cancel')));
}
