// One sync against the server: push the outbox in batches, then pull pages, with every retry rule of
// docs/sync-protocol.md ("errors and retry rules"), mirroring the reference client sync/client.py.
// All stored state goes through store.js; this module only talks HTTP and decides what each answer means.
import {ProtocolError} from './store.js';

export const PROTOCOL = 1;

export class SyncFailure extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;  // offline | unauthorized | revoked | protocol
    Object.assign(this, extra);
  }
}

export function newReport() {
  return {pushed: 0, applied: 0, duplicates: 0, conflicts: 0, rejected: 0, pulled: 0, removed: 0, pages: 0,
    retries: 0, resynced: false};
}

async function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function retryAfter(value) {
  if (value == null) return null;
  const n = Number(value);
  return Number.isFinite(n) ? Math.max(0, n) : null;  // an HTTP-date: the backoff is good enough
}

export class Syncer {
  /** options: {server, token, batchSize, pageSize, maxAttempts, backoffBase, backoffCap, sleep, random} */
  constructor(store, options) {
    this.store = store;
    this.o = options;
  }

  /** One call with retries: network errors, truncated bodies, 5xx and 429 are retried with
   * exponential backoff and full jitter, never sooner than Retry-After. Anything else is returned. */
  async request(method, path, payload, report, {raw, headers: extra} = {}) {
    // `raw`: a body that is not JSON (an attachment's chunk), sent as it is with `extra` headers.
    const headers = {Authorization: `Bearer ${this.o.token}`, Accept: 'application/json', ...extra};
    let body = raw;
    if (payload !== undefined) {
      // Serialised once: a retry sends the very same bytes.
      body = await gzip(JSON.stringify(payload));
      headers['Content-Type'] = 'application/json';
      headers['Content-Encoding'] = 'gzip';
    }
    for (let attempt = 1; ; attempt++) {
      let problem;
      let wait = null;
      if (!navigator.onLine) {
        // The phone knows it has no network: waiting out eight backoffs would only keep the user waiting.
        throw new SyncFailure('offline', 'No network. Nothing is lost: the next sync carries on.');
      }
      try {
        const response = await fetch(this.o.server + path, {method, headers, body, cache: 'no-store',
          credentials: 'omit', redirect: 'error'});
        if (response.status < 500 && response.status !== 429) {
          try {
            const text = await response.text();
            return {status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null};
          } catch (e) {
            problem = `HTTP ${response.status} with a truncated body (${e.name})`;  // the same as no answer
          }
        } else {
          problem = `HTTP ${response.status}`;
          wait = retryAfter(response.headers.get('Retry-After'));
        }
      } catch (e) {
        problem = `network: ${e.message}`;
      }
      if (attempt >= this.o.maxAttempts) {
        throw new SyncFailure('offline', `${method} ${path.split('?')[0]} failed ${attempt} times; last: ${problem}. `
          + 'Nothing is lost: the next sync carries on.');
      }
      report.retries += 1;
      await this.o.sleep(this.backoff(attempt, wait) * 1000);
    }
  }

  backoff(attempt, wait) {
    // Full jitter spreads out the many phones coming back after an outage; Retry-After is a floor.
    const bound = Math.min(this.o.backoffCap, this.o.backoffBase * 2 ** (attempt - 1));
    const delay = this.o.random() * bound;
    return wait != null ? Math.max(delay, wait) : delay;
  }

  /** Answers that mean the same on every endpoint. */
  async checkCommon(response) {
    const error = (response.body && response.body.error) || {};
    if (response.status === 401) {
      throw new SyncFailure('unauthorized', error.message || 'The device token was refused; enrol the device again.');
    }
    if (response.status === 403 && error.code === 'device_revoked') {
      const wipe = Boolean(response.body.wipe);
      if (wipe) await this.o.onWipe();
      throw new SyncFailure('revoked', error.message || 'This device was revoked.', {wiped: wipe});
    }
  }

  async sync(report = newReport()) {
    await this.push(report);
    await this.pull(report);
    return report;
  }

  /** Push until the outbox is empty. `{urgentOnly}` sends only the batch of an urgent mutation. */
  async push(report = newReport(), {urgentOnly = false} = {}) {
    let size = this.o.batchSize;
    let suspectUntil = null;  // while splitting a refused batch: the last seq it held
    for (;;) {
      const {batchId, rows} = await this.store.nextBatch(size);
      if (!rows.length) return report;
      const urgentBatch = rows.some((r) => r.urgent);
      const mutations = await this.store.wire(rows);
      const response = await this.request('POST', '/api/v1/sync/push', {protocol: PROTOCOL, batch_id: batchId, mutations}, report);
      await this.checkCommon(response);
      const error = (response.body && response.body.error) || {};
      const code = error.code || `http_${response.status}`;
      if (response.status === 200) {
        await this.store.settle(rows, mutations, response.body && response.body.results, report);
        if (suspectUntil === null || rows[rows.length - 1].seq >= suspectUntil) { size = this.o.batchSize; suspectUntil = null; }
        if (urgentOnly && urgentBatch) return report;
        continue;
      }
      if (response.status === 409 && code === 'id_conflict') {
        // Another device used this batch_id: nothing was stored for this one; same mutations, new id.
        await this.store.unfreeze(rows);
        continue;
      }
      const details = error.details || {};
      if (response.status === 415 || (response.status === 422 && details.fields && 'protocol' in details.fields)) {
        // Wrong for every batch this app sends: failing them one by one would only empty the queue.
        throw new SyncFailure('protocol', `push refused: ${code}: ${error.message} Update the app; the outbox is kept.`);
      }
      if ([400, 413, 422].includes(response.status) && rows.length > 1) {
        // The envelope was refused and nothing stored: send the same mutations in halves (new batch
        // ids) until the one at fault is alone, so one bad mutation never blocks the queue.
        await this.store.unfreeze(rows);
        size = Math.max(1, Math.floor(rows.length / 2));
        suspectUntil = Math.max(suspectUntil || 0, rows[rows.length - 1].seq);
        continue;
      }
      if ([400, 413, 422].includes(response.status)) {
        await this.store.fail(rows, code, error.message ?? null, error.details ?? null, report);
        if (suspectUntil !== null && rows[rows.length - 1].seq >= suspectUntil) { size = this.o.batchSize; suspectUntil = null; }
        continue;
      }
      throw new SyncFailure('protocol', `push answered HTTP ${response.status} (${code})`);
    }
  }

  async pull(report = newReport()) {
    for (;;) {
      const {cursor} = await this.store.meta(['cursor']);
      const query = new URLSearchParams({limit: String(this.o.pageSize)});
      if (cursor) query.set('cursor', cursor);
      const response = await this.request('GET', `/api/v1/sync/pull?${query}`, undefined, report);
      await this.checkCommon(response);
      const code = response.body && response.body.error && response.body.error.code;
      if ((response.status === 409 || response.status === 400) && (code === 'resync_required' || code === 'invalid_cursor')) {
        if (!cursor) throw new SyncFailure('protocol', `pull without a cursor answered ${code}`);
        // From empty; what the full pull does not confirm is removed at its end.
        await this.store.beginFullPull();
        report.resynced = true;
        continue;
      }
      if (response.status !== 200) throw new SyncFailure('protocol', `pull answered HTTP ${response.status} (${code})`);
      try {
        await this.store.storePage(response.body, report);
      } catch (e) {
        if (e instanceof ProtocolError) throw new SyncFailure('protocol', e.message);
        throw e;
      }
      report.pages += 1;
      if (!response.body.has_more) return report;
    }
  }
}
