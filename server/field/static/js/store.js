// The phone's local store: IndexedDB stores `records`, `outbox`, `failed`, `conflicts` and `meta`, as the
// reference client keeps them in SQLite (sync/client.py; docs/sync-protocol.md "what the device must
// store"). Every JSON value is split by sensitivity like sync/client_cipher.py: the aggregate fields in
// clear (PLAIN_FIELDS, kept equal to the Python list by tests/test_field_engine.py), every other field
// sealed under `_sealed` with the AAD "entity/id". Meta values that name people (the token) are sealed too.
//
// All the rules of the protocol that touch stored state live here: one unsent mutation per record,
// updates carry only changed fields, frozen batches, the settling of a push answer in one transaction
// (restricted fields dropped in it), a pulled page and its cursor in one transaction, never overwriting
// unsent edits, and the removal of what a full pull after resync_required did not send.
import {open as openSealed, seal} from './crypto.js';
import {deleteDb, openDb, req, tx} from './db.js';
import {caseCodeFor} from './casecode.js';

export const DB_NAME = 'homecoming-field';
const DB_VERSION = 1;
const SEALED = '_sealed';
const ALL = ['records', 'outbox', 'failed', 'conflicts', 'meta'];
export const ENTITIES = ['child', 'consent', 'stage_transition', 'assessment', 'service', 'followup', 'alert', 'referral',
  'tracing_request', 'trace'];
const COMMON = ['id', 'version', 'seq', 'created_at', 'updated_at', 'recorded_at', 'deleted_at'];
export const PLAIN_FIELDS = {
  child: ['case_code', 'sex', 'birth_year', 'age_estimation_method', 'district', 'identified_on', 'risk_level',
    'child_mother', 'disability', 'unaccompanied', 'stage', 'stage_since', 'needs_review', ...COMMON,
    'deidentified_at', 'merged_into', 'agency_id'],
  consent: ['purpose', 'given_by', 'given_on', 'withdrawn_on', 'child_id', ...COMMON],
  stage_transition: ['from_stage', 'to_stage', 'occurred_on', 'closure_reason', 'actor_id', 'child_id', ...COMMON],
  assessment: ['kind', 'assessed_on', 'risk_level', 'child_id', ...COMMON],
  service: ['type', 'status', 'started_on', 'ended_on', 'child_id', ...COMMON],
  followup: ['kind', 'due_on', 'status', 'completed_on', 'seen', 'not_seen_reason', 'wellbeing', 'risk_level',
    'concerns', 'planned_by_rule', 'child_id', ...COMMON],
  alert: ['key', 'rule', 'severity', 'child_id', 'followup_id', 'recipient_id', 'due_on', 'status',
    'acknowledged_by_id', 'resolved_by_id', ...COMMON],
  referral: ['child_id', 'service_type', 'agency_id', 'status', 'sent_on', 'consent_overridden', 'created_by_id', ...COMMON],
  tracing_request: ['status', 'inquirer_relationship', 'sex', 'birth_year', 'district', ...COMMON],
  trace: ['request_id', 'kind', 'done_on', 'actor_id', ...COMMON],
};
const PLAIN = Object.fromEntries(Object.entries(PLAIN_FIELDS).map(([e, names]) => [e, new Set(names)]));
// The CAAFAG profile: collected offline, gone from the phone once the server has it (sync/client.py).
export const RESTRICTED_FIELDS = {
  child: ['armed_group', 'role_in_group', 'recruitment', 'date_joined', 'date_left', 'how_left', 'sexual_violence',
    'restricted_notes'],
  tracing_request: ['armed_group'],
};
// A referral's update is a lifecycle step, checked by the server against its current status, not merged
// from a base: each step is queued as its own mutation (sent, then accepted, offline).
const STEPPED = new Set(['referral']);

// What a record's `child_id` holds: the record it belongs to, so a parent's records are listed (and
// removed) with it. A child is its own; a trace belongs to its tracing request; a request to nothing.
export function parentOf(entity, id, data) {
  if (entity === 'child') return id;
  return (entity === 'trace' ? data.request_id : data.child_id) ?? null;
}
const SETTLED = new Set(['applied', 'duplicate', 'conflict']);
const DAY_MS = 86400000;

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const uuid = () => globalThis.crypto.randomUUID();
const rkey = (entity, id) => `${entity}/${id}`;
export const nowIso = () => new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00');

export class ProtocolError extends Error {}

function withoutRestricted(entity, fields, keep = {}) {
  const names = RESTRICTED_FIELDS[entity] || [];
  return Object.fromEntries(Object.entries(fields).filter(([k]) => !names.includes(k) || k in keep));
}

export async function openStore() {
  return openDb(DB_NAME, DB_VERSION, (db) => {
    const records = db.createObjectStore('records', {keyPath: ['entity', 'id']});
    records.createIndex('by_entity', 'entity');
    records.createIndex('by_child', ['entity', 'child_id']);
    const outbox = db.createObjectStore('outbox', {keyPath: 'seq', autoIncrement: true});
    outbox.createIndex('by_record', ['entity', 'record_id']);
    outbox.createIndex('by_batch', 'batch_id');  // unsent rows (batch_id null) are not in it
    db.createObjectStore('failed', {keyPath: 'mutation_id'}).createIndex('by_record', ['entity', 'record_id']);
    db.createObjectStore('conflicts', {keyPath: 'conflict_id'}).createIndex('by_record', ['entity', 'record_id']);
    db.createObjectStore('meta');
  });
}

export async function destroyStore(db) {
  if (db) db.close();
  await deleteDb(DB_NAME);
}

export async function readMeta(db, keys) {
  return tx(db, ['meta'], 'readonly', async ({meta}) => {
    const out = {};
    for (const k of keys) out[k] = await req(meta.get(k));
    return out;
  });
}

export function writeMeta(db, values) {
  return tx(db, ['meta'], 'readwrite', ({meta}) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) meta.delete(k); else meta.put(v, k);
    }
  });
}

export async function counts(db) {
  return tx(db, ['outbox', 'failed', 'conflicts'], 'readonly', async (s) => ({
    pending: await req(s.outbox.count()), failed: await req(s.failed.count()), conflicts: await req(s.conflicts.count()),
  }));
}

/** The store, opened with its data key: every read and write of sealed values goes through here. */
export class Store {
  constructor(db, key) {
    this.db = db;
    this.key = key;
    // Decrypted views, "entity/id" -> {stored, fields}: `stored` is the JSON of the sealed view they
    // were opened from (see view()). Dropped on lock.
    this.views = new Map();
  }

  // ---------------------------------------------------------------- sealing

  async sealFields(entity, id, fields) {
    const plainNames = PLAIN[entity] || new Set();
    const plain = {};
    const secret = {};
    let any = false;
    for (const [k, v] of Object.entries(fields)) {
      if (plainNames.has(k)) plain[k] = v; else { secret[k] = v; any = true; }
    }
    if (any) plain[SEALED] = await seal(this.key, JSON.stringify(secret), rkey(entity, id));
    return plain;
  }

  async openFields(entity, id, stored) {
    if (!stored) return {};
    const {[SEALED]: sealed, ...plain} = stored;
    return sealed ? {...plain, ...JSON.parse(await openSealed(this.key, sealed, rkey(entity, id)))} : plain;
  }

  async sealValue(entity, id, value) {
    return value == null ? null : seal(this.key, JSON.stringify(value), rkey(entity, id));
  }

  async openValue(entity, id, stored) {
    return stored == null ? null : JSON.parse(await openSealed(this.key, stored, rkey(entity, id)));
  }

  sealMeta(name, value) {
    return seal(this.key, JSON.stringify(value), `meta/${name}`);
  }

  async openMeta(name, stored) {
    return stored == null ? null : JSON.parse(await openSealed(this.key, stored, `meta/${name}`));
  }

  meta(keys) {
    return readMeta(this.db, keys);
  }

  // ---------------------------------------------------------------- reading

  /** The decrypted fields of a row as read from the store. A kept copy answers only for the very
   * value it was opened from: a screen reads a row, then awaits other reads and the decryption, and a
   * sync may store a newer copy meanwhile (and drop the kept one); keyed by record alone, the late
   * decryption of the old row was kept and shown until the record changed again (a child's new stage
   * missing after the sync that brought it). Writers still drop what they replace, to free memory. */
  async view(row) {
    const k = rkey(row.entity, row.id);
    const stored = JSON.stringify(row.view);
    const kept = this.views.get(k);
    if (kept && kept.stored === stored) return kept.fields;
    const fields = await this.openFields(row.entity, row.id, row.view);
    this.views.set(k, {stored, fields});
    return fields;
  }

  rows(entity, childId) {
    return tx(this.db, ['records'], 'readonly', ({records}) => (childId === undefined
      ? req(records.index('by_entity').getAll(entity))
      : req(records.index('by_child').getAll([entity, childId]))));
  }

  row(entity, id) {
    return tx(this.db, ['records'], 'readonly', ({records}) => req(records.get([entity, id])));
  }

  async messages() {
    const {failed, conflicts} = await tx(this.db, ['failed', 'conflicts'], 'readonly', async (s) => ({
      failed: await req(s.failed.getAll()), conflicts: await req(s.conflicts.getAll()),
    }));
    const out = new Map();
    const add = (entity, id, m) => {
      const k = rkey(entity, id);
      if (!out.has(k)) out.set(k, []);
      out.get(k).push(m);
    };
    for (const c of conflicts) {
      add(c.entity, c.record_id, {kind: 'conflict', code: 'conflict', message: 'A supervisor will decide between your edit and another one.',
        mutation_id: c.mutation_id, fields: c.fields, conflict_id: c.conflict_id});
    }
    for (const f of failed) {
      add(f.entity, f.record_id, {kind: 'rejected', code: f.code, message: await this.openValue(f.entity, f.record_id, f.message),
        errors: await this.openValue(f.entity, f.record_id, f.errors), mutation_id: f.mutation_id,
        fields: await this.openFields(f.entity, f.record_id, f.fields), restricted_erased_at: f.restricted_erased_at});
    }
    return out;
  }

  async outboxRows() {
    return tx(this.db, ['outbox'], 'readonly', ({outbox}) => req(outbox.getAll()));
  }

  /** The device's edits of each record the server does not have yet, oldest first, merged. */
  async outstanding(rows, skip = new Set()) {
    const out = new Map();
    for (const r of rows) {
      if (skip.has(r.seq)) continue;
      const k = rkey(r.entity, r.record_id);
      out.set(k, {...(out.get(k) || {}), ...await this.openFields(r.entity, r.record_id, r.fields)});
    }
    return out;
  }

  // ---------------------------------------------------------------- editing offline

  /** Create (no id, or an id the device does not hold) or update the fields that differ. Returns
   * {id, mutation} where mutation is the outbox row touched (null when nothing changed). */
  async record(entity, fields, {id, urgent = false} = {}) {
    if (!ENTITIES.includes(entity)) throw new TypeError(`entity must be one of ${ENTITIES.join(', ')}`);
    fields = JSON.parse(JSON.stringify(fields));
    const existing = id ? await this.row(entity, id) : undefined;
    const recordId = existing ? existing.id : (id || uuid());
    const unsent = await this.unsentFor(entity, recordId);
    let shown;
    let changed;
    let op;
    let base;
    if (!existing) {
      op = 'create';
      base = 0;
      changed = fields;
      shown = {...fields, id: recordId};
      if (entity === 'child') shown.case_code = caseCodeFor(recordId);
    } else {
      const current = await this.openFields(entity, recordId, existing.view);
      changed = Object.fromEntries(Object.entries(fields).filter(([k, v]) => !same(current[k], v)));
      if (!Object.keys(changed).length) return {id: recordId, mutation: null};
      op = 'update';
      base = existing.version;
      shown = {...current, ...changed};
    }
    const childId = parentOf(entity, recordId, shown) ?? existing?.child_id ?? null;
    // One unsent mutation per record: a second edit before the first is sent merges into it.
    const mutation = unsent && !STEPPED.has(entity)
      ? {...unsent, fields: await this.sealFields(entity, recordId, {...await this.openFields(entity, recordId, unsent.fields), ...changed}),
        recorded_at: nowIso(), urgent: unsent.urgent || urgent}
      : {mutation_id: uuid(), entity, record_id: recordId, child_id: childId, op, base_version: base,
        fields: await this.sealFields(entity, recordId, changed), recorded_at: nowIso(), batch_id: null, urgent};
    const row = {entity, id: recordId, child_id: childId, version: existing ? existing.version : 0,
      server: existing ? existing.server : {}, view: await this.sealFields(entity, recordId, shown), gen: existing?.gen ?? 0};
    await tx(this.db, ['records', 'outbox'], 'readwrite', async ({records, outbox}) => {
      records.put(row);
      mutation.seq = await req(outbox.put(mutation));
    });
    this.views.set(rkey(entity, recordId), {stored: JSON.stringify(row.view), fields: shown});
    return {id: recordId, mutation};
  }

  async unsentFor(entity, recordId) {
    const rows = await tx(this.db, ['outbox'], 'readonly', ({outbox}) =>
      req(outbox.index('by_record').getAll([entity, recordId])));
    return rows.find((r) => r.batch_id == null) || null;
  }

  /** Send a failed mutation again, corrected, under a new mutation_id (the old one is spent). */
  async resubmit(mutationId, fields = {}) {
    const f = await tx(this.db, ['failed'], 'readonly', ({failed}) => req(failed.get(mutationId)));
    if (!f) return null;
    const merged = {...await this.openFields(f.entity, f.record_id, f.fields), ...JSON.parse(JSON.stringify(fields))};
    const rec = await this.row(f.entity, f.record_id);
    const unsent = await this.unsentFor(f.entity, f.record_id);
    const mutation = unsent
      ? {...unsent, fields: await this.sealFields(f.entity, f.record_id, {...await this.openFields(f.entity, f.record_id, unsent.fields), ...merged})}
      : {mutation_id: uuid(), entity: f.entity, record_id: f.record_id, child_id: rec?.child_id ?? merged.child_id ?? null,
        op: f.op, base_version: rec ? rec.version : 0, fields: await this.sealFields(f.entity, f.record_id, merged),
        recorded_at: nowIso(), batch_id: null, urgent: false};
    const outstanding = await this.outstanding((await this.outboxRows()).filter((r) => r.entity === f.entity && r.record_id === f.record_id));
    const extra = {...(outstanding.get(rkey(f.entity, f.record_id)) || {}), ...merged};
    const view = await this.viewAfter(f.entity, f.record_id, rec, extra, true);
    await tx(this.db, ['failed', 'outbox', 'records'], 'readwrite', async (s) => {
      s.failed.delete(mutationId);
      mutation.seq = await req(s.outbox.put(mutation));
      if (view) s.records.put(view);
    });
    this.views.delete(rkey(f.entity, f.record_id));
    return mutation.mutation_id;
  }

  /** Drop a failed mutation; the record shows the server's copy again (a never-sent create goes). */
  async dismiss(mutationId) {
    const f = await tx(this.db, ['failed'], 'readonly', ({failed}) => req(failed.get(mutationId)));
    if (!f) return;
    const rec = await this.row(f.entity, f.record_id);
    const rows = (await this.outboxRows()).filter((r) => r.entity === f.entity && r.record_id === f.record_id);
    const outstanding = (await this.outstanding(rows)).get(rkey(f.entity, f.record_id)) || {};
    const view = await this.viewAfter(f.entity, f.record_id, rec, outstanding, rows.length > 0);
    await tx(this.db, ['failed', 'records'], 'readwrite', (s) => {
      s.failed.delete(mutationId);
      if (view) s.records.put(view);
      else if (rec && rec.version === 0) s.records.delete([f.entity, f.record_id]);
    });
    this.views.delete(rkey(f.entity, f.record_id));
  }

  /** The record row with its view recomputed (server copy + outstanding edits); null = delete it. */
  async viewAfter(entity, id, rec, outstanding, keep) {
    if (!rec) return null;
    if (rec.version === 0) {
      if (!keep && !Object.keys(outstanding).length) return null;
      const shown = await this.openFields(entity, id, rec.view);
      return {...rec, view: await this.sealFields(entity, id, {...shown, ...outstanding, id})};
    }
    const server = await this.openFields(entity, id, rec.server);
    return {...rec, view: await this.sealFields(entity, id, {...server, ...outstanding, id})};
  }

  // ---------------------------------------------------------------- push

  /** The batch to send: a frozen batch that never got an answer is resent unchanged; otherwise the
   * oldest unsent mutations (an urgent one and the mutations of its child before it first) get a new
   * batch_id, frozen on disk before anything is sent. */
  async nextBatch(size) {
    const rows = await this.outboxRows();
    const frozen = rows.find((r) => r.batch_id != null);
    if (frozen) return {batchId: frozen.batch_id, rows: rows.filter((r) => r.batch_id === frozen.batch_id)};
    const urgent = rows.find((r) => r.urgent);
    const pick = urgent ? rows.filter((r) => r.seq <= urgent.seq && r.child_id === urgent.child_id) : rows;
    const chosen = pick.slice(0, size);
    if (!chosen.length) return {batchId: null, rows: []};
    const batchId = uuid();
    for (const r of chosen) r.batch_id = batchId;
    await tx(this.db, ['outbox'], 'readwrite', ({outbox}) => { for (const r of chosen) outbox.put(r); });
    return {batchId, rows: chosen};
  }

  async unfreeze(rows) {
    await tx(this.db, ['outbox'], 'readwrite', ({outbox}) => {
      for (const r of rows) outbox.put({...r, batch_id: null});
    });
  }

  async wire(rows) {
    return Promise.all(rows.map(async (r) => ({mutation_id: r.mutation_id, entity: r.entity, id: r.record_id, op: r.op,
      base_version: r.base_version, fields: await this.openFields(r.entity, r.record_id, r.fields), recorded_at: r.recorded_at})));
  }

  /** Apply the server's answer to a batch, all in one IndexedDB transaction. */
  async settle(rows, sent, results, report) {
    if (!Array.isArray(results) || results.length !== rows.length) {
      throw new ProtocolError('push answer does not hold one result per mutation');
    }
    const inBatch = new Set(rows.map((r) => r.seq));
    const all = await this.outboxRows();
    const later = all.filter((r) => !inBatch.has(r.seq));  // rows behind the batch (their bases may move)
    const recs = new Map();
    for (const r of rows) {
      const k = rkey(r.entity, r.record_id);
      if (!recs.has(k)) {
        const rec = await this.row(r.entity, r.record_id);
        recs.set(k, rec ? {rec, server: await this.openFields(r.entity, r.record_id, rec.server),
          shown: await this.openFields(r.entity, r.record_id, rec.view)} : null);
      }
    }
    const failed = [];
    const conflicts = [];
    const touched = new Set();
    const dropped = new Set();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const result = results[i] || {};
      if (result.mutation_id !== row.mutation_id) throw new ProtocolError('push results are not in the order of the mutations');
      report.pushed += 1;
      let status = result.status;
      if (status === 'duplicate' && result.original_status === 'rejected') status = 'rejected';
      const k = rkey(row.entity, row.record_id);
      const state = recs.get(k);
      if (SETTLED.has(status)) {
        report[{applied: 'applied', duplicate: 'duplicates', conflict: 'conflicts'}[status]] += 1;
        const conflicting = new Set(result.conflicting_fields || []);
        if (status === 'conflict') {
          conflicts.push({conflict_id: result.conflict_id || row.mutation_id, mutation_id: row.mutation_id,
            entity: row.entity, record_id: row.record_id, fields: [...conflicting].sort()});
        }
        if (state && result.version != null) {
          // The server now holds what it accepted; conflicting fields keep the server's value (the pull brings it).
          for (const [f, v] of Object.entries(sent[i].fields)) if (!conflicting.has(f)) state.server[f] = v;
          state.server = withoutRestricted(row.entity, state.server);
          if (status === 'applied' && result.version === row.base_version + 1) {
            for (const r of later) {
              if (r.entity === row.entity && r.record_id === row.record_id && r.base_version === row.base_version) {
                r.base_version = result.version;
                touched.add(r);
              }
            }
          }
          state.rec.version = Math.max(state.rec.version, result.version);
        }
        state && (state.dropRestricted = true);
      } else if (status === 'rejected') {
        report.rejected += 1;
        failed.push({mutation_id: row.mutation_id, entity: row.entity, record_id: row.record_id, op: row.op, fields: row.fields,
          code: result.code || 'rejected', message: await this.sealValue(row.entity, row.record_id, result.message ?? null),
          errors: await this.sealValue(row.entity, row.record_id, result.errors ?? null), failed_at: nowIso(), restricted_erased_at: null});
      } else {
        throw new ProtocolError(`unknown push status ${JSON.stringify(status)}`);
      }
      dropped.add(row.seq);
    }
    // Only the batch's records: decrypting the whole queue for every batch would be quadratic.
    const outstanding = await this.outstanding(later.filter((r) => recs.has(rkey(r.entity, r.record_id))));
    const puts = [];
    for (const [k, state] of recs) {
      if (!state) continue;
      const {rec} = state;
      const waiting = outstanding.get(k) || {};
      // What the user sees now: the server's copy with what is still unsent on top (a create the
      // server never took keeps what was typed, shown in failed until dismissed).
      let shown = rec.version > 0 ? {...state.server, ...waiting, id: rec.id} : state.shown;
      if (state.dropRestricted) shown = withoutRestricted(rec.entity, shown, waiting);
      puts.push({...rec, server: await this.sealFields(rec.entity, rec.id, state.server),
        view: await this.sealFields(rec.entity, rec.id, shown)});
      this.views.delete(k);
    }
    await tx(this.db, ['outbox', 'failed', 'conflicts', 'records'], 'readwrite', (s) => {
      for (const seq of dropped) s.outbox.delete(seq);
      for (const r of touched) s.outbox.put(r);
      for (const f of failed) s.failed.put(f);
      for (const c of conflicts) s.conflicts.put(c);
      for (const p of puts) s.records.put(p);
    });
    return failed.map((f) => f.mutation_id);
  }

  /** A refused single-mutation batch (or a refused batch that cannot be split): final for those. */
  async fail(rows, code, message, details, report) {
    const results = rows.map((r) => ({mutation_id: r.mutation_id, status: 'rejected', code, message, errors: details}));
    return this.settle(rows, rows.map(() => ({fields: {}})), results, report);
  }

  // ---------------------------------------------------------------- pull

  async beginFullPull() {
    const {gen} = await readMeta(this.db, ['gen']);
    await tx(this.db, ['meta'], 'readwrite', ({meta}) => {
      meta.put((gen || 0) + 1, 'gen');
      meta.put(true, 'full_pull');
      meta.delete('cursor');
    });
  }

  /** One page and its cursor in one transaction: a crash keeps both or neither. */
  async storePage(body, report) {
    const {changes, cursor} = body || {};
    if (!Array.isArray(changes) || !cursor) throw new ProtocolError('pull page lacks changes or cursor');
    const {gen = 0, full_pull: fullPull} = await readMeta(this.db, ['gen', 'full_pull']);
    const waitingRows = await this.outboxRows();
    const waitingKeys = new Set(waitingRows.map((r) => rkey(r.entity, r.record_id)));
    const inPage = new Set(changes.map((c) => rkey(c.entity, String(c.id))));
    const outstanding = await this.outstanding(waitingRows.filter((r) => inPage.has(rkey(r.entity, r.record_id))));
    const prepared = await Promise.all(changes.map(async (c) => {
      const entity = c.entity;
      const id = String(c.id);
      if (c.op === 'remove') return {entity, id, remove: true};
      if (!ENTITIES.includes(entity)) throw new ProtocolError(`unknown entity ${entity}`);
      const data = c.data || {};
      const server = await this.sealFields(entity, id, data);
      // Never overwrite the device's unsent edits: they stay on top of the server's copy.
      const waiting = outstanding.get(rkey(entity, id));
      const view = waiting ? await this.sealFields(entity, id, {...data, ...waiting, id}) : server;
      return {entity, id, version: c.version, row: {entity, id, child_id: parentOf(entity, id, data),
        version: c.version, server, view, gen}};
    }));
    await tx(this.db, ['records', 'conflicts', 'meta'], 'readwrite', async (s) => {
      // All reads issued at once (IndexedDB runs them in order), not one round trip per record.
      const found = await Promise.all(prepared.map((p) => (p.remove
        ? req(s.conflicts.index('by_record').getAll([p.entity, p.id])) : req(s.records.get([p.entity, p.id])))));
      for (const [i, p] of prepared.entries()) {
        const k = rkey(p.entity, p.id);
        this.views.delete(k);
        if (p.remove) {
          report.removed += 1;
          if (waitingKeys.has(k)) continue;  // kept until the server answers the edit (it will be rejected)
          s.records.delete([p.entity, p.id]);
          for (const c of found[i]) s.conflicts.delete(c.conflict_id);
          if (p.entity === 'tracing_request') {
            // A request reunified or closed is removed alone; its traces go with it.
            for (const key of await req(s.records.index('by_child').getAllKeys(['trace', p.id]))) {
              if (waitingKeys.has(rkey(...key))) continue;
              s.records.delete(key);
              this.views.delete(rkey(...key));
            }
          }
          continue;
        }
        report.pulled += 1;
        const existing = found[i];
        if (existing && existing.version > p.version) {
          // Older than what the device's own push got back: the newer copy comes on a later page.
          s.records.put({...existing, gen});
        } else {
          s.records.put(p.row);
        }
      }
      s.meta.put(cursor, 'cursor');
      if (!body.has_more && fullPull) {
        // A full pull after resync_required: whatever it did not send is no longer this device's.
        const stale = (await req(s.records.getAll())).filter((r) => r.gen < gen && r.version > 0
          && !waitingKeys.has(rkey(r.entity, r.id)));
        for (const r of stale) {
          s.records.delete([r.entity, r.id]);
          this.views.delete(rkey(r.entity, r.id));
          report.removed += 1;
        }
        s.meta.delete('full_pull');
      }
    });
  }

  // ---------------------------------------------------------------- erasing

  /** Erase the restricted fields of rejections older than `keepDays` (from failed and the view). */
  async eraseExpired(keepDays) {
    const cutoff = new Date(Date.now() - keepDays * DAY_MS).toISOString().replace(/\.\d{3}Z$/, '+00:00');
    const rows = (await tx(this.db, ['failed'], 'readonly', ({failed}) => req(failed.getAll())))
      .filter((f) => f.restricted_erased_at == null && f.failed_at <= cutoff && RESTRICTED_FIELDS[f.entity]);
    if (!rows.length) return 0;
    const expiring = new Set(rows.map((f) => rkey(f.entity, f.record_id)));
    const waiting = await this.outstanding((await this.outboxRows()).filter((r) => expiring.has(rkey(r.entity, r.record_id))));
    const fails = [];
    const recs = [];
    for (const f of rows) {
      const kept = withoutRestricted(f.entity, await this.openFields(f.entity, f.record_id, f.fields));
      fails.push({...f, fields: await this.sealFields(f.entity, f.record_id, kept), restricted_erased_at: nowIso()});
      const rec = await this.row(f.entity, f.record_id);
      if (rec) {
        const shown = withoutRestricted(f.entity, await this.openFields(f.entity, f.record_id, rec.view),
          waiting.get(rkey(f.entity, f.record_id)) || {});
        recs.push({...rec, view: await this.sealFields(f.entity, f.record_id, shown)});
      }
      this.views.delete(rkey(f.entity, f.record_id));
    }
    await tx(this.db, ['failed', 'records'], 'readwrite', (s) => {
      for (const f of fails) s.failed.put(f);
      for (const r of recs) s.records.put(r);
    });
    return rows.length;
  }
}

// Store operations that read, seal and write run one at a time: a sync's network waits happen outside,
// but an edit never interleaves with the settling of a push or the storing of a page.
for (const name of ['record', 'resubmit', 'dismiss', 'nextBatch', 'unfreeze', 'settle', 'storePage', 'beginFullPull',
  'eraseExpired']) {
  const inner = Store.prototype[name];
  Store.prototype[name] = function exclusive(...args) {
    const run = (this.queue || Promise.resolve()).then(() => inner.apply(this, args));
    this.queue = run.catch(() => {});
    return run;
  };
}

export {ALL as STORE_NAMES};
