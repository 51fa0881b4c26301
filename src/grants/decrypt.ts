// Opens one `enc:1:<base64 iv>.<base64 ciphertext+tag>` value (AES-256-GCM,
// 12-byte IV, Web Crypto layout, plaintext = JSON of the original value).
// Values without the prefix are plaintext and pass through untouched. A
// failure is a short reason for the audit row, never the value itself.

import { webcrypto } from 'node:crypto';
import { decodeBase64Strict } from './base64.js';
import { isCiphertext } from './ciphertext.js';

export const ENC_PREFIX = 'enc:1:';

export type DecryptFailure =
  | 'ciphertext-malformed' | 'ciphertext-tampered-or-wrong-key' | 'plaintext-not-json' | 'ciphertext-unsupported-version'
  | 'legacy-master-key-ciphertext' | 'no-key-for-epoch';
export type DecryptResult = { ok: true; value: unknown } | { ok: false; reason: DecryptFailure };


export async function decryptValue(key: webcrypto.CryptoKey, value: string): Promise<DecryptResult> {
  if (!value.startsWith(ENC_PREFIX)) return { ok: false, reason: 'ciphertext-unsupported-version' };
  const body = value.slice(ENC_PREFIX.length);
  const dot = body.indexOf('.');
  if (dot < 0) return { ok: false, reason: 'ciphertext-malformed' };
  const iv = decodeBase64Strict(body.slice(0, dot));
  const data = decodeBase64Strict(body.slice(dot + 1));
  if (!iv || iv.byteLength !== 12 || !data || data.byteLength < 16) return { ok: false, reason: 'ciphertext-malformed' };
  return openGcm(key, iv, data);
}

/** AES-256-GCM open and JSON parse, the plaintext zeroed after; shared by `enc:1:` and `enc:2:`. */
export async function openGcm(key: webcrypto.CryptoKey, iv: Uint8Array, data: Uint8Array, additionalData?: Uint8Array): Promise<DecryptResult> {
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(await webcrypto.subtle.decrypt({ name: 'AES-GCM', iv, tagLength: 128, ...(additionalData ? { additionalData } : {}) }, key, data));
  } catch {
    return { ok: false, reason: 'ciphertext-tampered-or-wrong-key' };
  }
  try {
    return { ok: true, value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain)) };
  } catch {
    return { ok: false, reason: 'plaintext-not-json' };
  } finally {
    plain.fill(0);
  }
}

/** Opens one ciphertext field value of a record; `field` is its top-level key in `data`. */
export type FieldOpener = (field: string, value: string) => Promise<DecryptResult>;

/**
 * Decrypts every ciphertext field (`enc:<n>:`) of a record in ascending
 * order of field name (UTF-16 code units, CONTRACT.md section 14). All or
 * nothing: one field that does not open fails the record with that first
 * field's reason, so the planner never sees half of it.
 */
export async function decryptRecord(
  open: FieldOpener,
  record: Record<string, unknown>,
): Promise<{ ok: true; record: Record<string, unknown>; fields: number } | { ok: false; reason: DecryptFailure; field: string }> {
  const out: Record<string, unknown> = { ...record };
  let fields = 0;
  for (const name of Object.keys(record).sort()) {
    const value = record[name];
    if (!isCiphertext(value)) continue;
    const r = await open(name, value);
    if (!r.ok) return { ok: false, reason: r.reason, field: name };
    out[name] = r.value;
    fields++;
  }
  return { ok: true, record: out, fields };
}

/** A v1 grant's opener: the MDK opens `enc:1:` values; every other version is `ciphertext-unsupported-version`. */
export const v1Opener = (key: webcrypto.CryptoKey): FieldOpener => (_field, value) => decryptValue(key, value);
