// The phone's keys (docs/field-app.md, "what a lost phone reveals"). A random AES-256-GCM data key seals
// every personal value; it is kept only wrapped (AES-GCM) under a key derived from the PIN by
// PBKDF2-SHA256, so changing the PIN never re-encrypts the store and the PIN itself is never stored.
// A value sealed under the data key (the key check) tells a wrong PIN from a damaged store.
// WebCrypto offers PBKDF2 but not scrypt (which sync/client_cipher.py uses): hence the high count.

export const PBKDF2_ITERATIONS = 600000;  // OWASP 2023 floor for PBKDF2-HMAC-SHA256
const KEY_CHECK = 'homecoming field key check v1';
const enc = new TextEncoder();
const dec = new TextDecoder();
const subtle = globalThis.crypto.subtle;

export function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

export function toBase64(bytes) {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = '';
  for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** New key material for a fresh store: the KDF parameters (salt kept with them, so a later app can
 * raise the count and still open old stores). */
export function newKdf() {
  return {name: 'PBKDF2-SHA256', iterations: PBKDF2_ITERATIONS, salt: toBase64(randomBytes(16))};
}

export async function pinKey(pin, kdf) {
  const base = await subtle.importKey('raw', enc.encode(pin), 'PBKDF2', false, ['deriveKey']);
  return subtle.deriveKey({name: 'PBKDF2', hash: 'SHA-256', salt: fromBase64(kdf.salt), iterations: kdf.iterations},
    base, {name: 'AES-GCM', length: 256}, false, ['wrapKey', 'unwrapKey']);
}

/** A fresh data key, and its wrapped form for the store. The key in memory cannot be exported. */
export async function newDataKey(wrapping) {
  const key = await subtle.generateKey({name: 'AES-GCM', length: 256}, true, ['encrypt', 'decrypt']);
  const iv = randomBytes(12);
  const wrapped = await subtle.wrapKey('raw', key, wrapping, {name: 'AES-GCM', iv});
  const usable = await unwrapDataKey(wrapping, {iv: toBase64(iv), key: toBase64(wrapped)});
  return {key: usable, wrapped: {iv: toBase64(iv), key: toBase64(wrapped)}};
}

/** The data key, or null when the PIN is wrong (the GCM tag of the wrapped key fails). */
export async function unwrapDataKey(wrapping, wrapped) {
  try {
    return await subtle.unwrapKey('raw', fromBase64(wrapped.key), wrapping,
      {name: 'AES-GCM', iv: fromBase64(wrapped.iv)}, {name: 'AES-GCM', length: 256}, false, ['encrypt', 'decrypt']);
  } catch {
    return null;
  }
}

/** Seal bytes or text under `key`, bound to `aad` ("entity/id"): a ciphertext moved to another record
 * does not open. Returns base64 of nonce || ciphertext+tag. */
export async function seal(key, plaintext, aad) {
  const iv = randomBytes(12);
  const data = typeof plaintext === 'string' ? enc.encode(plaintext) : plaintext;
  const ct = new Uint8Array(await subtle.encrypt({name: 'AES-GCM', iv, additionalData: enc.encode(aad)}, key, data));
  const out = new Uint8Array(12 + ct.length);
  out.set(iv);
  out.set(ct, 12);
  return toBase64(out);
}

export async function open(key, sealed, aad) {
  return dec.decode(await openBytes(key, sealed, aad));
}

/** What `seal` sealed, as bytes (a photo). */
export async function openBytes(key, sealed, aad) {
  const raw = fromBase64(sealed);
  return new Uint8Array(await subtle.decrypt({name: 'AES-GCM', iv: raw.subarray(0, 12), additionalData: enc.encode(aad)},
    key, raw.subarray(12)));
}

export function makeCheck(key) {
  return seal(key, KEY_CHECK, 'meta/key_check');
}

export async function verifyCheck(key, check) {
  try {
    return (await open(key, check, 'meta/key_check')) === KEY_CHECK;
  } catch {
    return false;
  }
}
