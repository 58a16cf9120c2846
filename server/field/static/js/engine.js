// The field app's engine: the only module the UI imports (contract: docs/field-app.md and
// /work/shared/DESIGN.md). It enrols the phone, keeps the caseload sealed in IndexedDB under a key the
// PIN unwraps, answers the views from it offline, and syncs with the server by sync protocol 1.
// Errors are EngineError with a `.code` the UI translates; `.message` is an English fallback.
import {makeCheck, newDataKey, newKdf, pinKey, unwrapDataKey, verifyCheck} from './crypto.js';
import {caseCodeFor as codeFor} from './casecode.js';
import {ENTITIES, ProtocolError, Store, counts, destroyStore, nowIso, openStore, readMeta, writeMeta} from './store.js';
import {SyncFailure, Syncer, newReport} from './sync.js';
import {keepPhoto, sendPhotos} from './uploads.js';

export {PHOTO_TYPES} from './uploads.js';

export class EngineError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
    Object.assign(this, extra);
  }
}

export const settings = {
  idleMinutes: 5,             // lock after this long without user activity
  maxPinAttempts: 5,          // the 5th wrong PIN in a row wipes the phone
  minPin: 6,
  batchSize: 200,             // mutations per push batch (the reference client's)
  pageSize: 500,              // records per pull page
  maxAttempts: 8,             // tries per request before the sync gives up (offline)
  backoffBase: 0.5,           // seconds; full jitter up to min(cap, base * 2^(attempt-1))
  backoffCap: 30,
  keepRejectedRestrictedDays: 7,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/** Change settings (tests shorten the backoff; a deployment may change the idle time). */
export function configure(values) {
  Object.assign(settings, values);
  if (state.store) touch();
}

const state = {db: null, store: null, token: null, caseworker: null, timer: null, syncing: null};
const listeners = new Set();
const VOCAB = await loadVocab();

async function loadVocab() {
  // The Service Worker keeps vocab.json for offline starts; the last copy seen is a fallback (it is
  // not personal: choice lists only).
  try {
    const response = await fetch(new URL('../vocab.json', import.meta.url));
    if (!response.ok) throw new Error(String(response.status));
    const vocab = await response.json();
    localStorage.setItem('homecoming.vocab', JSON.stringify(vocab));
    return vocab;
  } catch {
    return JSON.parse(localStorage.getItem('homecoming.vocab') || '{}');
  }
}

function emit(type) {
  for (const cb of listeners) {
    try { cb({type}); } catch (e) { console.error(e); }
  }
}

async function db() {
  if (!state.db) {
    state.db = await openStore();
    // Another tab deleting the database (a wipe) closes this connection.
    state.db.onversionchange = () => { state.db.close(); state.db = null; state.store = null; };
  }
  return state.db;
}

// Reads and syncs do not count as activity (a sync every few minutes would keep the phone open
// forever); the UI calls touch() on the user's input, and every write counts.
function unlocked() {
  if (!state.store) throw new EngineError('locked', 'The app is locked; enter the PIN.');
  return state.store;
}

function syncer(store) {
  return new Syncer(store, {...settings, server: location.origin, token: state.token,
    onWipe: () => wipe({silent: true})});
}

function engineError(e) {
  if (e instanceof EngineError) return e;
  if (e instanceof SyncFailure) return new EngineError(e.code, e.message, e.code === 'revoked' ? {wiped: Boolean(e.wiped)} : {});
  if (e instanceof ProtocolError) return new EngineError('protocol', e.message);
  return e;
}

// ------------------------------------------------------------------ enrolment and the lock

export async function status() {
  const meta = await readMeta(await db(), ['wrapped_key', 'server', 'device_label']);
  return {enrolled: Boolean(meta.wrapped_key), locked: !state.store, server: meta.server || null,
    ...(meta.device_label ? {deviceLabel: meta.device_label} : {}),
    ...(state.store && state.caseworker ? {caseworker: state.caseworker} : {})};
}

/** The QR payload homecoming:enrol?server=URL&token=TOKEN (or the bare token) -> {server, token}. */
export function parseEnrolment(text) {
  const raw = String(text || '').trim();
  let server = location.origin;
  let token = raw;
  if (raw.startsWith('homecoming:enrol?')) {
    const params = new URLSearchParams(raw.slice('homecoming:enrol?'.length));
    token = params.get('token') || '';
    try {
      server = new URL(params.get('server') || '').origin;
    } catch {
      throw new EngineError('bad_code', 'This is not an enrolment code.');
    }
  }
  if (!/^[0-9a-fA-F-]{36}\.[A-Za-z0-9_-]{20,}$/.test(token)) throw new EngineError('bad_code', 'This is not an enrolment code.');
  if (server !== location.origin) {
    throw new EngineError('other_server', `This code is for ${server}; this app belongs to ${location.origin}.`);
  }
  return {server, token};
}

export async function enrol(text, pin) {
  const {token} = parseEnrolment(text);
  if (typeof pin !== 'string' || pin.length < settings.minPin) {
    throw new EngineError('weak_pin', `The PIN must have at least ${settings.minPin} characters.`);
  }
  const database = await db();
  const existing = await readMeta(database, ['wrapped_key']);
  if (existing.wrapped_key && !state.store) throw new EngineError('locked', 'Unlock the app before enrolling it again.');
  const caseworker = await verifyToken(token);
  if (existing.wrapped_key) {
    // Enrolled again after a revocation without wipe: the new token uploads what the outbox holds.
    await writeMeta(database, {token: await state.store.sealMeta('token', token),
      caseworker: caseworker ? await state.store.sealMeta('caseworker', caseworker) : undefined});
  } else {
    const kdf = newKdf();
    const {key, wrapped} = await newDataKey(await pinKey(pin, kdf));
    const store = new Store(database, key);
    await writeMeta(database, {kdf, wrapped_key: wrapped, key_check: await makeCheck(key), failed_pins: 0,
      server: location.origin, enrolled_at: nowIso(), token: await store.sealMeta('token', token),
      caseworker: caseworker ? await store.sealMeta('caseworker', caseworker) : undefined});
    state.store = store;
  }
  state.token = token;
  state.caseworker = caseworker || state.caseworker;
  touch();
  emit('changed');
}

/** Ask the server whether the token is good (one record's pull); offline, accept it for now. Returns
 * the caseworker's username when the page names one. */
async function verifyToken(token) {
  if (!navigator.onLine) return null;
  let response;
  try {
    response = await fetch(`${location.origin}/api/v1/sync/pull?limit=1`, {headers: {Authorization: `Bearer ${token}`},
      cache: 'no-store', credentials: 'omit'});
  } catch {
    return null;  // no network after all: the first sync checks it
  }
  const body = await response.json().catch(() => null);
  if (response.status === 401) throw new EngineError('unauthorized', 'The server does not know this code (used already, or mistyped).');
  if (response.status === 403) throw new EngineError('revoked', 'This device was revoked.', {wiped: false});
  if (!response.ok) return null;
  const child = (body?.changes || []).find((c) => c.entity === 'child' && c.data);
  return child ? child.data.caseworker || null : null;
}

export async function unlock(pin) {
  if (state.store) { touch(); return; }
  const database = await db();
  const meta = await readMeta(database, ['kdf', 'wrapped_key', 'key_check', 'failed_pins', 'token', 'caseworker']);
  if (!meta.wrapped_key) throw new EngineError('not_enrolled', 'This phone is not enrolled yet.');
  const key = await unwrapDataKey(await pinKey(String(pin ?? ''), meta.kdf), meta.wrapped_key);
  if (!key || !(await verifyCheck(key, meta.key_check))) {
    const failures = (meta.failed_pins || 0) + 1;
    if (failures >= settings.maxPinAttempts) {
      await wipe();
      throw new EngineError('wiped', 'Too many wrong PINs: everything on this phone was deleted.');
    }
    await writeMeta(database, {failed_pins: failures});
    throw new EngineError('wrong_pin', 'Wrong PIN.', {attemptsLeft: settings.maxPinAttempts - failures});
  }
  const store = new Store(database, key);
  state.token = await store.openMeta('token', meta.token);
  state.caseworker = await store.openMeta('caseworker', meta.caseworker);
  if (meta.failed_pins) await writeMeta(database, {failed_pins: 0});
  state.store = store;
  await store.eraseExpired(settings.keepRejectedRestrictedDays);
  touch();
}

/** Drop the key and everything decrypted: the store stays sealed until the PIN is entered again. */
export function lock() {
  const was = Boolean(state.store);
  if (state.store) state.store.views.clear();
  state.store = null;
  state.token = null;
  state.caseworker = null;
  clearTimeout(state.timer);
  state.timer = null;
  if (was) emit('locked');
}

/** User activity: the idle lock starts again. */
export function touch() {
  if (!state.store) return;
  clearTimeout(state.timer);
  state.timer = setTimeout(lock, settings.idleMinutes * 60000);
}

export function onChange(cb) {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

/** Delete everything: the database (records, outbox, keys, token, cursor). */
export async function wipe({silent = false} = {}) {
  lock();
  const database = state.db;
  state.db = null;
  await destroyStore(database);
  localStorage.removeItem('homecoming.vocab');
  if (!silent) emit('wiped');
}

// ------------------------------------------------------------------ reading

const nameOf = (c) => `${c.given_name || ''} ${c.family_name || ''}`.trim();
const fold = (s) => String(s || '').normalize('NFD').replace(/\p{M}/gu, '').toLocaleLowerCase();
const DATE_OF = ['due_on', 'assessed_on', 'given_on', 'occurred_on', 'started_on', 'created_at'];

async function decorate(store, rows) {
  const [outbox, messages] = await Promise.all([store.outboxRows(), store.messages()]);
  const pending = new Set(outbox.map((r) => `${r.entity}/${r.record_id}`));
  return Promise.all(rows.map(async (row) => {
    const k = `${row.entity}/${row.id}`;
    return {...await store.view(row), _pending: pending.has(k), _messages: messages.get(k) || []};
  }));
}

export async function children() {
  const store = unlocked();
  const list = await decorate(store, await store.rows('child'));
  return list.sort((a, b) => nameOf(a).localeCompare(nameOf(b)) || String(a.case_code).localeCompare(String(b.case_code)));
}

export async function search(text) {
  const words = fold(text).split(/\s+/).filter(Boolean);
  const all = await children();
  if (!words.length) return all;
  return all.filter((c) => {
    const hay = fold([c.given_name, c.family_name, c.other_names, c.case_code, c.village].join(' '));
    return words.every((w) => hay.includes(w));
  });
}

export async function get(entity, id) {
  const store = unlocked();
  const row = await store.row(entity, id);
  return row ? (await decorate(store, [row]))[0] : null;
}

export async function list(entity, {childId} = {}) {
  const store = unlocked();
  const rows = await decorate(store, await store.rows(entity, childId));
  const when = (r) => DATE_OF.map((f) => r[f]).find(Boolean) || '';
  return rows.sort((a, b) => when(b).localeCompare(when(a)));
}

/** The day's work: visits due today, overdue visits, open alerts; each with its child. Filters on the
 * fields kept in clear, so only the matching records are decrypted. */
export async function today(isoDate) {
  const store = unlocked();
  const day = isoDate || new Date().toISOString().slice(0, 10);
  const followups = (await store.rows('followup')).filter((r) => r.view.status === 'scheduled' && r.view.due_on <= day);
  const alerts = (await store.rows('alert')).filter((r) => r.view.status === 'open');
  const kids = new Map((await children()).map((c) => [c.id, c]));
  const withChild = async (rows) => (await decorate(store, rows)).map((r) => ({...r, child: kids.get(r.child_id) || null}));
  const due = await withChild(followups);
  const byDue = (a, b) => String(a.due_on).localeCompare(String(b.due_on));
  return {today: due.filter((f) => f.due_on === day).sort(byDue), overdue: due.filter((f) => f.due_on < day).sort(byDue),
    alerts: (await withChild(alerts)).sort((a, b) => String(a.due_on).localeCompare(String(b.due_on)))};
}

// ------------------------------------------------------------------ writing

/** The server's rule (models/planning.py danger_reported), from the lists vocab.json serves. */
export function dangerReported(followup) {
  return (VOCAB.danger_not_seen_reasons || []).includes(followup.not_seen_reason)
    || (followup.concerns || []).some((c) => (VOCAB.danger_concerns || []).includes(c));
}

export async function record(entity, fields, {id} = {}) {
  const store = unlocked();
  if (!ENTITIES.includes(entity)) throw new EngineError('bad_entity', `Unknown record type ${entity}.`);
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) throw new EngineError('bad_fields', 'Fields must be an object.');
  let urgent = false;
  if (entity === 'followup') {
    const before = id ? await get('followup', id) : null;
    urgent = dangerReported({...(before || {}), ...fields});
  }
  touch();
  const {id: recordId} = await store.record(entity, fields, {id, urgent});
  emit('changed');
  if (urgent && navigator.onLine && state.token) {
    // Danger: this visit goes before everything else queued (with its child's mutations before it).
    try {
      await syncer(store).push(newReport(), {urgentOnly: true});
      await writeMeta(store.db, {last_sync_ok_at: nowIso(), last_error: undefined});
      emit('synced');
    } catch (e) {
      const err = engineError(e);
      await writeMeta(store.db, {last_error: err.code || 'error'}).catch(() => {});
      if (err.code === 'revoked' && err.wiped) emit('wiped');
    }
  }
  return recordId;
}

export function acknowledge(alertId) {
  return record('alert', {status: 'acknowledged'}, {id: alertId});
}

export async function dismiss(mutationId) {
  touch();
  await unlocked().dismiss(mutationId);
  emit('changed');
}

export async function resubmit(mutationId, fields = {}) {
  touch();
  const id = await unlocked().resubmit(mutationId, fields);
  if (!id) throw new EngineError('not_found', 'No such failed change.');
  emit('changed');
  return id;
}

// ------------------------------------------------------------------ sync

export async function syncStatus() {
  const database = await db();
  const [c, meta] = await Promise.all([counts(database),
    readMeta(database, ['last_sync_ok_at', 'last_attempt_at', 'last_error'])]);
  const ok = meta.last_sync_ok_at || null;
  return {...c, lastSyncOkAt: ok, lastAttemptAt: meta.last_attempt_at || null, lastError: meta.last_error || null,
    staleDays: ok ? Math.floor((Date.now() - Date.parse(ok)) / 86400000) : null};
}

/** Push then pull. One at a time: a second call while one runs gets the same answer. */
export function sync() {
  if (!state.syncing) state.syncing = runSync().finally(() => { state.syncing = null; });
  return state.syncing;
}

async function runSync() {
  const store = unlocked();
  if (!state.token) throw new EngineError('not_enrolled', 'This phone is not enrolled yet.');
  await writeMeta(store.db, {last_attempt_at: nowIso()});
  try {
    await store.eraseExpired(settings.keepRejectedRestrictedDays);
    const report = await syncer(store).sync();
    report.photos = await sendPhotos(store, syncer(store), report);  // after the push: their children are there
    await writeMeta(store.db, {last_sync_ok_at: nowIso(), last_error: undefined});
    const {pushed, applied, duplicates, conflicts, rejected, pulled, removed} = report;
    emit('synced');
    return {pushed, applied, duplicates, conflicts, rejected, pulled, removed};
  } catch (e) {
    const err = engineError(e);
    if (err.code === 'revoked') {
      if (!err.wiped) await writeMeta(store.db, {last_error: 'revoked'});
      emit('revoked');
      if (err.wiped) emit('wiped');
    } else if (state.db) {
      await writeMeta(state.db, {last_error: err.code || 'error'});
    }
    throw err;
  }
}

/** Keep a photo taken at registration, sealed, until the sync after the child's create sends it. */
export async function attachPhoto(childId, file) {
  const id = await keepPhoto(unlocked(), childId, file);
  touch();
  emit('changed');
  return id;
}

// ------------------------------------------------------------------ small helpers

export function vocab() {
  return VOCAB;
}

export function caseCodeFor(uuid) {
  return codeFor(uuid);
}
