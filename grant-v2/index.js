// mana grant v2 and record keys: the reference module (CONTRACT.md section
// 14) for the webapp's vault client and mana-auth's grant route. One ES
// module on Web Crypto (globalThis.crypto.subtle), TextEncoder/TextDecoder
// and atob/btoa only: it runs unchanged in a browser, Bun and Node, with
// no dependencies and no Node API. The daemon never imports it; its tests
// and the daemon's meet on the contract's vector (grant-v2-vector.json).
//
// Keys never leave Web Crypto as far as the API allows: the record-key root
// and every AES key are non-extractable; the raw record keys a grant must
// carry, the grant key and the key table are zeroed as soon as they are
// used.

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });
const subtle = () => {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw new Error('mana grant v2 needs Web Crypto (globalThis.crypto.subtle)');
  return s;
};

/** The tables whose records have record keys (section 14). */
export const RECORD_KEY_TABLES = Object.freeze(['notes', 'tasks', 'events', 'journalEntries', 'kontextDoc']);
export const GRANT_LABEL = 'mana-ai-mission-grant/v2';
const ENC2 = /^enc:2:(0|[1-9][0-9]{0,9}):([A-Za-z0-9+/]+={0,2})\.([A-Za-z0-9+/]+={0,2})$/;
const ENC1 = /^enc:1:([A-Za-z0-9+/]+={0,2})\.([A-Za-z0-9+/]+={0,2})$/;
const MAX_EPOCH = 2 ** 31 - 1;
const DAY = 86_400_000;

/** Any `enc:<n>:` value is encrypted, whatever its version (never plaintext). */
export function isEncrypted(value) {
  return typeof value === 'string' && /^enc:[0-9]+:/.test(value);
}

// --- encodings

/** canon(parts) = UTF-8(JSON.stringify(parts)), each part a string or an integer 0..2^31-1. */
export function canon(parts) {
  for (const p of parts) {
    if (typeof p === 'string') continue;
    if (!Number.isInteger(p) || p < 0 || p > MAX_EPOCH) throw new TypeError(`canon: ${String(p)} is neither a string nor an integer 0..2^31-1`);
  }
  return te.encode(JSON.stringify(parts));
}

export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Standard padded base64, strictly: null for anything else. */
export function fromBase64(text) {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  try {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return toBase64(out) === text ? out : null;
  } catch {
    return null;
  }
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
const random = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));

// --- record keys

/** The user's 32-byte master key as the root of record keys: HKDF, non-extractable. */
export async function importRecordKeyRoot(masterKey) {
  if (!(masterKey instanceof Uint8Array) || masterKey.length !== 32) throw new TypeError('the master key must be 32 bytes');
  return subtle().importKey('raw', masterKey, 'HKDF', false, ['deriveBits', 'deriveKey']);
}

/** The user's master key as the AES-GCM key that opens `enc:1:` values (old ones), non-extractable. */
export async function importLegacyKey(masterKey) {
  return subtle().importKey('raw', masterKey, 'AES-GCM', false, ['decrypt']);
}

const rkParams = (ref) => ({
  name: 'HKDF',
  hash: 'SHA-256',
  salt: new Uint8Array(0),
  info: canon(['mana-record-key', 2, ref.userId, ref.table, ref.recordId, ref.epoch]),
});

/**
 * Record keys derived from a root, cached per (user, table, record,
 * epoch): `aesKey(ref)` for encrypting and decrypting (non-extractable),
 * `rawKey(ref)` for a grant's key table (the caller zeroes it).
 */
export function createRecordKeys(root, opts = {}) {
  const max = opts.maxEntries ?? 1000;
  const cache = new Map();
  return {
    async aesKey(ref) {
      const id = JSON.stringify([ref.userId, ref.table, ref.recordId, ref.epoch]);
      let key = cache.get(id);
      if (!key) {
        key = subtle().deriveKey(rkParams(ref), root, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
        cache.set(id, key);
        if (cache.size > max) cache.delete(cache.keys().next().value);
      }
      return key;
    },
    async rawKey(ref) {
      return new Uint8Array(await subtle().deriveBits(rkParams(ref), root, 256));
    },
  };
}

// --- field values

const aad = (ref, field, epoch) => canon(['mana-enc', 2, ref.userId, ref.table, ref.recordId, field, epoch]);

/** `enc:2:<epoch>:<iv>.<ciphertext‖tag>` of `value` for (user, table, record, field, epoch). `iv` for tests only. */
export async function encryptField(keys, ref, field, value, epoch, iv = random(12)) {
  const key = await keys.aesKey({ ...ref, epoch });
  const plain = te.encode(JSON.stringify(value));
  const ct = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: aad(ref, field, epoch), tagLength: 128 }, key, plain));
  plain.fill(0);
  return `enc:2:${epoch}:${toBase64(iv)}.${toBase64(ct)}`;
}

/**
 * Opens one field value: `enc:2:` with its record key, `enc:1:` with the
 * legacy (master) key when given. `{ ok: true, value }` or `{ ok: false,
 * reason }`, the reason as the runner's audit names it.
 */
export async function decryptField(keys, ref, field, value, opts = {}) {
  if (!isEncrypted(value)) return { ok: true, value };
  if (value.startsWith('enc:1:')) {
    if (!opts.legacyKey) return { ok: false, reason: 'legacy-master-key-ciphertext' };
    const m = ENC1.exec(value);
    const iv = m && fromBase64(m[1]);
    const ct = m && fromBase64(m[2]);
    if (!iv || !ct || iv.length !== 12 || ct.length < 16) return { ok: false, reason: 'ciphertext-malformed' };
    return open(opts.legacyKey, iv, ct, undefined);
  }
  if (!value.startsWith('enc:2:')) return { ok: false, reason: 'ciphertext-unsupported-version' };
  const m = ENC2.exec(value);
  const epoch = m ? Number(m[1]) : NaN;
  const iv = m && fromBase64(m[2]);
  const ct = m && fromBase64(m[3]);
  if (!iv || !ct || iv.length !== 12 || ct.length < 16 || !(epoch <= MAX_EPOCH)) return { ok: false, reason: 'ciphertext-malformed' };
  return open(await keys.aesKey({ ...ref, epoch }), iv, ct, aad(ref, field, epoch));
}

async function open(key, iv, ct, additionalData) {
  let plain;
  try {
    plain = new Uint8Array(await subtle().decrypt({ name: 'AES-GCM', iv, tagLength: 128, ...(additionalData ? { additionalData } : {}) }, key, ct));
  } catch {
    return { ok: false, reason: 'ciphertext-tampered-or-wrong-key' };
  }
  try {
    return { ok: true, value: JSON.parse(td.decode(plain)) };
  } catch {
    return { ok: false, reason: 'plaintext-not-json' };
  } finally {
    plain.fill(0);
  }
}

// --- records

/** The record with `fields` (those present) encrypted as `enc:2:` at `epoch`; other fields as they are. */
export async function encryptRecord(keys, ref, record, fields, epoch = 0) {
  const out = { ...record };
  for (const f of fields) if (f in out && !isEncrypted(out[f])) out[f] = await encryptField(keys, ref, f, out[f], epoch);
  return out;
}

/**
 * Every encrypted field opened, in ascending order of field name, all or
 * nothing: `{ ok: true, record }` or `{ ok: false, field, reason }`.
 */
export async function decryptRecord(keys, ref, record, opts = {}) {
  const out = { ...record };
  for (const f of Object.keys(record).sort()) {
    if (!isEncrypted(record[f])) continue;
    const r = await decryptField(keys, ref, f, record[f], opts);
    if (!r.ok) return { ok: false, field: f, reason: r.reason };
    out[f] = r.value;
  }
  return { ok: true, record: out };
}

/** The highest epoch of the record's `enc:2:` values (0 when it has none): what a grant names for it. */
export function recordEpoch(record) {
  let epoch = 0;
  for (const v of Object.values(record)) {
    const m = typeof v === 'string' ? ENC2.exec(v) : null;
    if (m && Number(m[1]) > epoch) epoch = Number(m[1]);
  }
  return epoch;
}

/**
 * The fields to write again so that every encrypted field of the record is
 * `enc:2:` at `epoch` (an upgrade from `enc:1:`, or a re-key to a new
 * epoch): `{ field: newValue }`, empty when nothing changes; throws when a
 * field does not open.
 */
export async function upgradeDiff(keys, ref, record, epoch, opts = {}) {
  const diff = {};
  for (const f of Object.keys(record).sort()) {
    const v = record[f];
    if (!isEncrypted(v)) continue;
    const m = ENC2.exec(v);
    if (m && Number(m[1]) === epoch) continue;
    const r = await decryptField(keys, ref, f, v, opts);
    if (!r.ok) throw new Error(`field ${f} does not open (${r.reason}); it cannot be upgraded`);
    diff[f] = await encryptField(keys, ref, f, r.value, epoch);
  }
  return diff;
}

// --- the runner's key

/** A PEM or DER SubjectPublicKeyInfo as an RSA-OAEP (SHA-256) key, and its key id (section 14: runnerKid). */
export async function importRunnerPublicKey(spki) {
  const der = typeof spki === 'string' ? fromBase64(spki.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')) : spki;
  if (!der) throw new TypeError('the runner public key is neither PEM nor DER');
  const key = await subtle().importKey('spki', der, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
  const kid = hex(new Uint8Array(await subtle().digest('SHA-256', der)).subarray(0, 8));
  return { key, kid };
}

// --- the grant

function keyTableOf(entries) {
  const parts = [];
  let size = 6;
  for (const e of entries) {
    const k = te.encode(e.scopeKey);
    if (k.length < 1 || k.length > 512) throw new RangeError(`scope key ${e.scopeKey} is not 1..512 UTF-8 bytes`);
    parts.push([k, e.epoch, e.rk]);
    size += 2 + k.length + 4 + 32;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set([0x4d, 0x4b, 0x54, 0x32], 0); // "MKT2"
  view.setUint16(4, entries.length);
  let at = 6;
  for (const [k, epoch, rk] of parts) {
    view.setUint16(at, k.length);
    out.set(k, at + 2);
    view.setUint32(at + 2 + k.length, epoch);
    out.set(rk, at + 6 + k.length);
    at += 6 + k.length + 32;
  }
  return out;
}

/**
 * A v2 Mission Grant for the records of `records` ([{ table, id, epoch }],
 * 1..256 distinct, tables of RECORD_KEY_TABLES), wrapped for the runner's
 * public key (importRunnerPublicKey). `ttlMs` defaults to 7 days, clamped
 * to [1 h, 30 d]. `grantId`, `gwk` and `iv` are for tests only.
 */
export async function buildGrant({ keys, userId, missionId, records, runner, now = Date.now(), ttlMs = 7 * DAY, grantId, gwk, iv }) {
  if (!Array.isArray(records) || records.length === 0) throw new RangeError('a grant names at least one record');
  const entries = new Map();
  for (const r of records) {
    if (!RECORD_KEY_TABLES.includes(r.table)) throw new RangeError(`table ${r.table} has no record keys`);
    if (!Number.isInteger(r.epoch) || r.epoch < 0 || r.epoch > MAX_EPOCH) throw new RangeError(`epoch ${r.epoch} of ${r.table}:${r.id}`);
    entries.set(JSON.stringify([`${r.table}:${r.id}`, r.epoch]), { scopeKey: `${r.table}:${r.id}`, table: r.table, id: r.id, epoch: r.epoch });
  }
  const scope = [...new Set([...entries.values()].map((e) => e.scopeKey))].sort();
  if (scope.length > 256) throw new RangeError('a grant names at most 256 records');
  const ttl = Math.min(30 * DAY, Math.max(3_600_000, ttlMs));
  const header = JSON.stringify({
    typ: 'mana-ai-mission-grant',
    v: 2,
    grantId: grantId ?? globalThis.crypto.randomUUID(),
    userId,
    missionId,
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + ttl).toISOString(),
    runnerKid: runner.kid,
    scope,
  });
  const sorted = [...entries.values()].sort((a, b) => (a.scopeKey < b.scopeKey ? -1 : a.scopeKey > b.scopeKey ? 1 : a.epoch - b.epoch));
  const withKeys = [];
  for (const e of sorted) withKeys.push({ ...e, rk: await keys.rawKey({ userId, table: e.table, recordId: e.id, epoch: e.epoch }) });
  const table = keyTableOf(withKeys);
  for (const e of withKeys) e.rk.fill(0);
  const grantKey = gwk ? gwk.slice() : random(32);
  const keysIv = iv ?? random(12);
  try {
    const aes = await subtle().importKey('raw', grantKey, 'AES-GCM', false, ['encrypt']);
    const sealed = new Uint8Array(await subtle().encrypt({ name: 'AES-GCM', iv: keysIv, additionalData: te.encode(header), tagLength: 128 }, aes, table));
    const packed = new Uint8Array(12 + sealed.length);
    packed.set(keysIv, 0);
    packed.set(sealed, 12);
    const wrapped = new Uint8Array(await subtle().encrypt({ name: 'RSA-OAEP', label: te.encode(GRANT_LABEL) }, runner.key, grantKey));
    return { v: 2, header, wrappedKey: toBase64(wrapped), keys: toBase64(packed) };
  } finally {
    grantKey.fill(0);
    table.fill(0);
  }
}
