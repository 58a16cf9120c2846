// The forms a caseworker fills in the field: a visit outcome, a new child (with consent per purpose) or
// a child's details, a stage move, an assessment, a service. Each saves through engine.record (or
// engine.resubmit when correcting a refused change) and goes back to the child's page.
import * as engine from '../engine.js';
import {h, todayIso} from './dom.js';
import {t, term} from '../i18n.js';
import {area, checks, choice, date, form, radios, text} from './controls.js';
import {childName, errorText} from './words.js';

function vocab(name) {
  return engine.vocab()[name] || [];
}

export function reportsDanger(fields) {
  return vocab('danger_not_seen_reasons').includes(fields.not_seen_reason)
    || (fields.concerns || []).some((c) => vocab('danger_concerns').includes(c));
}

// Drop empty values a record never had, so an update carries only what the user really changed.
export function changed(values, before = {}) {
  return Object.fromEntries(Object.entries(values)
    .filter(([k, v]) => !((v == null || (Array.isArray(v) && !v.length)) && before[k] == null)));
}

// Save through the engine; an engine error becomes the form's error summary (field errors when the
// engine names fields, else one line).
export async function save(ctx, entity, fields, {id, fix} = {}) {
  try {
    const saved = fix ? await engine.resubmit(fix, fields) : await engine.record(entity, fields, id ? {id} : {});
    return {id: saved || id};
  } catch (error) {
    const named = error.details?.fields || error.errors;
    return {errors: named && typeof named === 'object' ? named : {[t('form.problem')]: [errorText(error)]}};
  }
}

function page(title, child, body) {
  return h('div', {},
    h('h1', {tabindex: -1}, title),
    child ? h('p', {class: 'subtitle'}, childName(child), ' ', h('span', {class: 'code'}, child.case_code || '')) : null,
    body,
    child ? h('a', {class: 'button secondary', href: `#/child/${child.id}`}, t('form.cancel')) : null);
}

export async function visitView(ctx, {id, record: followupId}, query) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const followup = followupId ? await engine.get('followup', followupId) : null;
  if (followupId && !followup) return ctx.notFound();
  const was = followup || {};
  const outcome = radios('status', t('visit.outcome'), [['done', t('visit.done')], ['missed', t('visit.missed')]],
    {value: was.status === 'missed' ? 'missed' : 'done'});
  const reason = choice('not_seen_reason', t('field.not_seen_reason'), 'not_seen_reason', vocab('not_seen_reasons'),
    {value: was.not_seen_reason});
  const seen = radios('seen', t('field.seen'), [['yes', t('visit.seen_yes')], ['no', t('visit.seen_no')]],
    {value: was.seen === true ? 'yes' : was.seen === false ? 'no' : null,
      onchange: (event) => { reason.row.hidden = event.target.value !== 'no'; }});
  reason.row.hidden = was.seen !== false;
  const controls = [outcome, seen, reason,
    choice('wellbeing', t('field.wellbeing'), 'wellbeing', vocab('wellbeing'), {value: was.wellbeing}),
    choice('risk_level', t('field.risk_level'), 'risk', vocab('risk_levels'), {value: was.risk_level}),
    checks('concerns', t('field.concerns'), 'concern', vocab('concerns'), {value: was.concerns || []}),
    area('notes', t('field.notes'), {value: was.notes}),
    date('completed_on', t('field.completed_on'), {value: was.completed_on || todayIso(), max: todayIso()})];
  const body = form(controls, t('visit.save'), async (v) => {
    const fields = {status: v.status, completed_on: v.completed_on,
      seen: v.seen === 'yes' ? true : v.seen === 'no' ? false : null,
      not_seen_reason: v.seen === 'no' ? v.not_seen_reason : null,
      wellbeing: v.wellbeing, risk_level: v.risk_level, concerns: v.concerns, notes: v.notes};
    const errors = {};
    if (fields.status === 'done' && fields.seen == null) errors.seen = [t('visit.say_seen')];
    if (fields.seen === false && !fields.not_seen_reason) errors.not_seen_reason = [t('visit.say_why')];
    if (!fields.completed_on) errors.completed_on = [t('form.required')];
    if (Object.keys(errors).length) return errors;
    const fresh = followup ? changed(fields, was)
      : {child_id: id, kind: 'visit', due_on: fields.completed_on, ...changed(fields)};
    const danger = reportsDanger(fields);
    const result = await save(ctx, 'followup', fresh, {id: followup?.id, fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(danger ? t('visit.danger') : t('visit.saved'), danger ? 'danger' : 'status');
    ctx.syncSoon();
    ctx.go(`#/child/${id}`);
    return null;
  });
  return page(t(followup ? 'visit.title_planned' : 'visit.title'), child, body);
}

const RESTRICTED = [['armed_group', text], ['role_in_group', text], ['date_joined', date], ['date_left', date],
  ['how_left', null], ['recruitment', area], ['sexual_violence', area], ['restricted_notes', area]];

export async function childFormView(ctx, {id}, query) {
  const child = id ? await engine.get('child', id) : null;
  if (id && !child) return ctx.notFound();
  const was = child || {};
  const today = todayIso();
  const districts = vocab('districts');
  const listId = 'districts-list';
  const district = text('district', t('field.district'), {value: was.district, list: districts.length ? listId : null});
  const details = [
    text('given_name', t('field.given_name'), {value: was.given_name, autocomplete: 'off'}),
    text('family_name', t('field.family_name'), {value: was.family_name, autocomplete: 'off'}),
    text('other_names', t('field.other_names'), {value: was.other_names, autocomplete: 'off'}),
    choice('sex', t('field.sex'), 'sex', vocab('sexes'), {value: was.sex, required: true}),
    date('date_of_birth', t('field.date_of_birth'), {value: was.date_of_birth, max: today}),
    text('birth_year', t('field.birth_year'), {value: was.birth_year, inputmode: 'numeric', hint: t('register.birth_year_hint')}),
    district,
    text('village', t('field.village'), {value: was.village, autocomplete: 'off'}),
    area('family_contacts', t('field.family_contacts'), {value: was.family_contacts}),
    date('identified_on', t('field.identified_on'), {value: was.identified_on || (child ? null : today), max: today}),
    choice('risk_level', t('field.risk_level'), 'risk', vocab('risk_levels'), {value: was.risk_level}),
  ];
  // Consent per purpose, only when registering; later consents are recorded on the web.
  const consents = child ? [] : vocab('consent_purposes').map((purpose) =>
    choice(`consent:${purpose}`, t('register.consent_for', {purpose: term('consent_purpose', purpose)}),
      'consent_giver', vocab('consent_givers'), {hint: t('register.consent_hint')}));
  const restricted = RESTRICTED.map(([name, make]) => (make
    ? make(name, t(`field.${name}`), {max: make === date ? today : undefined})
    : choice(name, t(`field.${name}`), 'how_left', vocab('how_left'))));
  // A photo at registration (docs/field-app.md, "Photos"): kept sealed, sent after the child.
  const photo = child ? null : text('photo', t('register.photo'), {type: 'file', accept: 'image/*',
    capture: 'environment', hint: t('register.photo_hint')});
  const controls = [...details, ...consents, ...(photo ? [photo] : []), ...restricted];
  const body = form(controls, t(child ? 'register.save' : 'register.submit'), async (v) => {
    const fields = Object.fromEntries(details.map((c) => [c.name, v[c.name]]));
    for (const c of restricted) fields[c.name] = v[c.name];
    if (fields.birth_year != null) {
      if (!/^\d{4}$/.test(fields.birth_year)) return {birth_year: [t('register.birth_year_bad')]};
      fields.birth_year = Number(fields.birth_year);
    }
    if (!fields.sex) return {sex: [t('form.required')]};
    const picture = photo?.input.files[0];
    if (picture && !engine.PHOTO_TYPES.includes(picture.type)) return {photo: [t('register.photo_type')]};
    const result = await save(ctx, 'child', changed(fields, was), {id, fix: query.fix});
    if (result.errors) return result.errors;
    const childId = result.id;
    for (const c of consents) {
      if (!v[c.name]) continue;
      const saved = await save(ctx, 'consent', {child_id: childId, purpose: c.name.split(':')[1],
        given_by: v[c.name], given_on: today});
      if (saved.errors) return saved.errors;
    }
    if (picture) await engine.attachPhoto(childId, picture);
    ctx.flash(t(child ? 'register.saved' : 'register.done'));
    ctx.syncSoon();
    ctx.go(`#/child/${childId}`);
    return null;
  });
  // Group the form: details, consent, and the restricted profile folded away with its warning.
  const firstConsent = consents[0]?.row;
  if (firstConsent) body.insertBefore(h('h2', {}, t('register.consent')), firstConsent);
  const fold = h('details', {class: 'restricted'}, h('summary', {}, t('register.restricted')),
    h('p', {class: 'hint'}, t('register.restricted_hint')), restricted.map((c) => c.row));
  body.insertBefore(fold, body.querySelector('button[type=submit]'));
  if (districts.length) body.append(h('datalist', {id: listId}, districts.map((d) => h('option', {value: d}))));
  return page(t(child ? 'register.edit_title' : 'register.title'), child, body);
}

export async function stageView(ctx, {id}, query) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const targets = (engine.vocab().caseworker_moves || {})[child.stage] || [];
  if (!targets.length) {
    return page(t('stage.title'), child, h('p', {}, t('stage.none', {stage: term('stage', child.stage)})));
  }
  const controls = [
    radios('to_stage', t('stage.to', {stage: term('stage', child.stage)}), targets.map((s) => [s, term('stage', s)])),
    date('occurred_on', t('field.occurred_on'), {value: todayIso()}),
    area('reason', t('field.reason')),
  ];
  const body = form(controls, t('stage.save'), async (v) => {
    if (!v.to_stage) return {to_stage: [t('form.required')]};
    if (!v.occurred_on) return {occurred_on: [t('form.required')]};
    const result = await save(ctx, 'stage_transition', changed({child_id: id, ...v}), {fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(t('stage.saved'));
    ctx.syncSoon();
    ctx.go(`#/child/${id}`);
    return null;
  });
  return page(t('stage.title'), child, body);
}

export async function assessmentView(ctx, {id, record}, query) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const was = record ? (await engine.get('assessment', record)) || {} : {};
  const controls = [
    choice('kind', t('field.kind'), 'assessment_kind', vocab('assessment_kinds'), {value: was.kind, required: true}),
    date('assessed_on', t('field.assessed_on'), {value: was.assessed_on || todayIso(), max: todayIso()}),
    choice('risk_level', t('field.risk_level'), 'risk', vocab('risk_levels'), {value: was.risk_level}),
    area('notes', t('field.notes'), {value: was.notes}),
  ];
  const body = form(controls, t('assessment.save'), async (v) => {
    if (!v.kind) return {kind: [t('form.required')]};
    if (!v.assessed_on) return {assessed_on: [t('form.required')]};
    const fields = record ? changed(v, was) : changed({child_id: id, ...v});
    const result = await save(ctx, 'assessment', fields, {id: record, fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(t('assessment.saved'));
    ctx.syncSoon();
    ctx.go(`#/child/${id}`);
    return null;
  });
  return page(t('assessment.title'), child, body);
}

export async function serviceView(ctx, {id, record}, query) {
  const child = await engine.get('child', id);
  if (!child) return ctx.notFound();
  const was = record ? (await engine.get('service', record)) || {} : {};
  const controls = [
    choice('type', t('field.type'), 'service_type', vocab('service_types'), {value: was.type, required: true}),
    text('provider', t('field.provider'), {value: was.provider}),
    choice('status', t('field.status'), 'service_status', vocab('service_statuses'),
      {value: was.status || 'planned', blank: false}),
    date('started_on', t('field.started_on'), {value: was.started_on}),
    area('notes', t('field.notes'), {value: was.notes}),
  ];
  const body = form(controls, t('service.save'), async (v) => {
    if (!v.type) return {type: [t('form.required')]};
    const fields = record ? changed(v, was) : changed({child_id: id, ...v});
    const result = await save(ctx, 'service', fields, {id: record, fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(t('service.saved'));
    ctx.syncSoon();
    ctx.go(`#/child/${id}`);
    return null;
  });
  return page(t('service.title'), child, body);
}
