// Photos taken at registration (docs/field-app.md, "Photos"): kept sealed in the phone's store like every
// personal value until the child's create has reached the server, then sent through the resumable
// upload endpoint (docs/sync-protocol.md, "Uploading attachments"), resuming after a cut, and erased
// from the phone once the server has the file (or refused it for good).
//
// In the `meta` store: `photos` lists the waiting ids (no personal value); `photo:<id>` holds the sealed
// description (child, type, size, SHA-256, the upload's id once started) and `photo-bytes:<id>` the
// sealed bytes. The description is sealed too: a hash confirms a known photo.
import {openBytes, seal} from './crypto.js';
import {readMeta, writeMeta} from './store.js';
import {req, tx} from './db.js';

export const PHOTO_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const CHUNK = 256 * 1024;
const CHUNK_TYPE = 'application/offset+octet-stream';

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function waiting(store) {
  return (await readMeta(store.db, ['photos'])).photos || [];
}

/** Keep `file` (a File from the camera) sealed on the phone for `childId`; sent at the next sync. */
export async function keepPhoto(store, childId, file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const id = globalThis.crypto.randomUUID();
  const about = {child_id: childId, content_type: file.type, size: bytes.length,
    sha256: hex(await globalThis.crypto.subtle.digest('SHA-256', bytes)), upload_id: null};
  const sealedAbout = await seal(store.key, JSON.stringify(about), `photo/${id}`);
  const sealedBytes = await seal(store.key, bytes, `photo-bytes/${id}`);
  const ids = [...await waiting(store), id];
  await writeMeta(store.db, {photos: ids, [`photo:${id}`]: sealedAbout, [`photo-bytes:${id}`]: sealedBytes});
  return id;
}

export async function photosWaiting(store) {
  return (await waiting(store)).length;
}

async function forget(store, id) {
  const ids = (await waiting(store)).filter((x) => x !== id);
  await writeMeta(store.db, {photos: ids, [`photo:${id}`]: undefined, [`photo-bytes:${id}`]: undefined});
}

async function childOnServer(store, childId) {
  const row = await tx(store.db, ['records'], 'readonly', ({records}) => req(records.get(['child', childId])));
  return Boolean(row && row.version > 0);
}

/** Send every waiting photo whose child the server has. A network failure stops here (SyncFailure
 * 'offline'); the next sync asks the server how far the upload got and sends the rest. */
export async function sendPhotos(store, syncer, report) {
  let sent = 0;
  for (const id of await waiting(store)) {
    const meta = await readMeta(store.db, [`photo:${id}`, `photo-bytes:${id}`]);
    const about = JSON.parse(new TextDecoder().decode(await openBytes(store.key, meta[`photo:${id}`], `photo/${id}`)));
    if (!await childOnServer(store, about.child_id)) continue;
    const bytes = await openBytes(store.key, meta[`photo-bytes:${id}`], `photo-bytes/${id}`);
    const outcome = await sendOne(store, syncer, report, id, about, bytes);
    if (outcome !== 'kept') await forget(store, id);
    if (outcome === 'sent') sent += 1;
  }
  return sent;
}

async function forgetUpload(store, id, about) {
  await writeMeta(store.db, {[`photo:${id}`]: await seal(store.key, JSON.stringify({...about, upload_id: null}), `photo/${id}`)});
  return 'kept';
}

async function sendOne(store, syncer, report, id, about, bytes) {
  let offset = null;
  if (about.upload_id) {
    const state = await syncer.request('GET', `/api/v1/attachments/uploads/${about.upload_id}`, undefined, report);
    await syncer.checkCommon(state);
    if (state.status === 200) offset = state.body.offset;
  }
  if (offset === null) {
    const created = await syncer.request('POST', `/api/v1/children/${about.child_id}/attachments/uploads`, {
      content_type: about.content_type, size: about.size, sha256: about.sha256, filename: null, for_field: true,
    }, report);
    await syncer.checkCommon(created);
    if (created.status !== 201) return 'refused';  // type, size or count: sending again cannot help
    about.upload_id = created.body.id;
    offset = 0;
    await writeMeta(store.db, {[`photo:${id}`]: await seal(store.key, JSON.stringify(about), `photo/${id}`)});
  }
  while (offset < bytes.length) {
    const answer = await syncer.request('PATCH', `/api/v1/attachments/uploads/${about.upload_id}`, undefined, report,
      {raw: bytes.subarray(offset, offset + CHUNK), headers: {'Content-Type': CHUNK_TYPE, 'Upload-Offset': String(offset)}});
    await syncer.checkCommon(answer);
    const error = (answer.body && answer.body.error) || {};
    if (answer.status === 409 && error.code === 'offset_mismatch') offset = error.details.offset;  // a resent chunk
    else if (answer.status === 200) offset = answer.body.offset;
    else if (answer.status === 404) return forgetUpload(store, id, about);  // expired: start again next sync
    else return 'refused';
  }
  const done = await syncer.request('POST', `/api/v1/attachments/uploads/${about.upload_id}/finish`, undefined, report);
  await syncer.checkCommon(done);
  return done.status === 201 ? 'sent' : 'refused';
}
