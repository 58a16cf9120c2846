// Family tracing in the field (issue 14): the tracing requests this caseworker follows, a request's page
// with its traces, the request form and the add-a-trace form. Offline like everything else: records
// go through the engine (sealed in the store) and sync with the rest.
import * as engine from '../engine.js';
import {h, todayIso} from './dom.js';
import {formatDate, t, term} from '../i18n.js';
import {area, choice, date, form, text} from './controls.js';
import {attention} from './child.js';
import {changed, save} from './edit.js';

const vocab = (name) => engine.vocab()[name] || [];

export function soughtName(request) {
  return [request.given_name, request.family_name].filter(Boolean).join(' ') || request.other_names
    || t('tracing.unnamed');
}

export async function tracingListView() {
  const requests = (await engine.list('tracing_request'))
    .sort((a, b) => soughtName(a).localeCompare(soughtName(b)));
  return h('div', {},
    h('h1', {tabindex: -1}, t('tracing.title')),
    h('a', {class: 'button primary', href: '#/tracing/new'}, t('tracing.new')),
    requests.length ? h('ul', {class: 'cards'}, requests.map((r) => h('li', {class: 'card'},
      h('a', {class: 'card-link', href: `#/tracing/${r.id}`},
        h('span', {class: 'card-title'}, soughtName(r)),
        h('span', {class: 'meta'}, [term('request_status', r.status || 'open'),
          t('tracing.asked_by', {relationship: term('relationship', r.inquirer_relationship)})].join(' · ')),
        r._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null,
        r._messages?.length ? h('span', {class: 'badge warn'}, t('status.needs_attention')) : null))))
      : h('p', {class: 'empty'}, t('tracing.none')));
}

export async function requestView(ctx, {id}) {
  const request = await engine.get('tracing_request', id);
  if (!request) return ctx.notFound();
  const traces = (await engine.list('trace', {childId: id}))
    .sort((a, b) => String(b.done_on).localeCompare(String(a.done_on)));
  const facts = [
    [t('field.status'), term('request_status', request.status || 'open')],
    [t('field.inquirer_name'), request.inquirer_name],
    [t('field.inquirer_relationship'), term('relationship', request.inquirer_relationship)],
    [t('field.inquirer_contact'), request.inquirer_contact],
    [t('field.other_names'), request.other_names],
    [t('field.sex'), term('sex', request.sex)],
    [t('field.birth_year'), request.birth_year],
    [t('field.district'), request.district],
    [t('field.village'), request.village],
    [t('field.separation_date'), request.separation_date ? formatDate(request.separation_date) : null],
    [t('field.separation_place'), request.separation_place],
  ].filter(([, v]) => v != null && v !== '');
  const entries = [['tracing_request', request], ...traces.map((r) => ['trace', r])];
  return h('div', {},
    h('h1', {tabindex: -1}, soughtName(request)),
    request._pending ? h('p', {class: 'badge'}, t('status.pending_badge')) : null,
    h('dl', {class: 'facts'}, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    attention(ctx, entries, (entity, record, mutationId) => (entity === 'tracing_request'
      ? `#/tracing/${id}/edit?fix=${encodeURIComponent(mutationId)}` : null)),
    h('nav', {class: 'actions', 'aria-label': t('tracing.actions')},
      h('a', {class: 'button primary', href: `#/tracing/${id}/trace`}, t('tracing.add_trace')),
      h('a', {class: 'button secondary', href: `#/tracing/${id}/edit`}, t('tracing.edit'))),
    h('section', {}, h('h2', {}, t('tracing.traces')),
      traces.length ? h('ol', {class: 'timeline'}, traces.map((r) => h('li', {},
        h('span', {class: 'when'}, formatDate(r.done_on)), ' ', term('trace_kind', r.kind), r.note ? `: ${r.note}` : '',
        r._pending ? h('span', {class: 'badge'}, t('status.pending_badge')) : null)))
        : h('p', {class: 'empty'}, t('tracing.no_traces'))),
    h('a', {class: 'button secondary', href: '#/tracing'}, t('tracing.back')));
}

export async function requestFormView(ctx, {id}, query) {
  const was = id ? await engine.get('tracing_request', id) : {};
  if (!was) return ctx.notFound();
  const controls = [
    text('inquirer_name', t('field.inquirer_name'), {value: was.inquirer_name, required: true, maxlength: 200}),
    choice('inquirer_relationship', t('field.inquirer_relationship'), 'relationship', vocab('relationships'),
      {value: was.inquirer_relationship, required: true}),
    text('inquirer_contact', t('field.inquirer_contact'), {value: was.inquirer_contact, maxlength: 500}),
    text('given_name', t('field.given_name'), {value: was.given_name, maxlength: 120}),
    text('family_name', t('field.family_name'), {value: was.family_name, maxlength: 120}),
    text('other_names', t('field.other_names'), {value: was.other_names, maxlength: 300}),
    choice('sex', t('field.sex'), 'sex', vocab('sexes'), {value: was.sex, required: true}),
    text('birth_year', t('field.birth_year'), {value: was.birth_year, inputmode: 'numeric', maxlength: 4}),
    choice('district', t('field.district'), 'district', vocab('districts'), {value: was.district}),
    text('village', t('field.village'), {value: was.village, maxlength: 120}),
    date('separation_date', t('field.separation_date'), {value: was.separation_date, max: todayIso()}),
    text('separation_place', t('field.separation_place'), {value: was.separation_place, maxlength: 200}),
    text('armed_group', t('field.armed_group'), {hint: t('tracing.armed_group_hint'), maxlength: 200}),
    area('notes', t('field.notes'), {value: was.notes}),
  ];
  const body = form(controls, t('tracing.save'), async (v) => {
    const errors = {};
    for (const name of ['inquirer_name', 'inquirer_relationship', 'sex']) if (!v[name]) errors[name] = [t('form.required')];
    if (!id && !v.given_name && !v.family_name && !v.other_names) errors.given_name = [t('tracing.some_name')];
    if (v.birth_year && !/^\d{4}$/.test(v.birth_year)) errors.birth_year = [t('tracing.year')];
    if (Object.keys(errors).length) return errors;
    const values = {...v, birth_year: v.birth_year ? Number(v.birth_year) : null};
    const result = await save(ctx, 'tracing_request', id ? changed(values, was) : changed(values), {id, fix: query.fix});
    if (result.errors) return result.errors;
    ctx.flash(t('tracing.saved'));
    ctx.syncSoon();
    ctx.go(`#/tracing/${result.id}`);
    return null;
  });
  return h('div', {}, h('h1', {tabindex: -1}, t(id ? 'tracing.edit' : 'tracing.new')), body,
    h('a', {class: 'button secondary', href: id ? `#/tracing/${id}` : '#/tracing'}, t('tracing.back')));
}

export async function traceView(ctx, {id}) {
  const request = await engine.get('tracing_request', id);
  if (!request) return ctx.notFound();
  const controls = [
    choice('kind', t('field.kind'), 'trace_kind', vocab('trace_kinds'), {required: true}),
    date('done_on', t('field.done_on'), {value: todayIso(), max: todayIso()}),
    area('note', t('field.notes')),
  ];
  const body = form(controls, t('trace.save'), async (v) => {
    if (!v.kind) return {kind: [t('form.required')]};
    if (!v.done_on) return {done_on: [t('form.required')]};
    const result = await save(ctx, 'trace', changed({request_id: id, ...v}));
    if (result.errors) return result.errors;
    ctx.flash(t('trace.saved'));
    ctx.syncSoon();
    ctx.go(`#/tracing/${id}`);
    return null;
  });
  return h('div', {}, h('h1', {tabindex: -1}, t('trace.title')), h('p', {class: 'subtitle'}, soughtName(request)), body,
    h('a', {class: 'button secondary', href: `#/tracing/${id}`}, t('tracing.back')));
}
