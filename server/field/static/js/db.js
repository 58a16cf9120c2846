// A small IndexedDB wrapper: open with an upgrade step, and one helper that runs a function inside one
// transaction and resolves when that transaction has committed (so "stored" means on disk).
// Inside `fn` only IndexedDB requests may be awaited: awaiting anything else (a fetch, WebCrypto) lets
// the transaction commit early. Callers seal and open values before or after, never inside.

export function req(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function openDb(name, version, upgrade) {
  const request = indexedDB.open(name, version);
  request.onupgradeneeded = () => upgrade(request.result, request.transaction);
  return req(request);
}

export function deleteDb(name) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error);
    request.onblocked = () => resolve();  // completes once the last connection closes
  });
}

/** Run `fn(stores)` in one transaction over `names`; resolves with fn's result after the commit. */
export function tx(db, names, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(names, mode, {durability: 'strict'});
    const stores = Object.fromEntries(names.map((n) => [n, t.objectStore(n)]));
    let result;
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error('transaction aborted'));
    Promise.resolve().then(() => fn(stores)).then((r) => { result = r; }, (e) => {
      try { t.abort(); } catch { /* already finished */ }
      reject(e);
    });
  });
}
