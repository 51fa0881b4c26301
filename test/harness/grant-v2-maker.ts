// The webapp's and mana-auth's side of grant v2 in tests: the reference
// module (grant-v2/, as they would call it) builds record keys, `enc:2:`
// values and grants; sealGrant builds grants the module refuses to make
// (an over-long lifetime, a broken key table), sealed correctly so the
// runner's later steps are the ones that must refuse them. Every secret is
// registered for the suite's log-leak scan.

import { webcrypto } from 'node:crypto';
import * as ref from '../../grant-v2/index.js';
import type { RunnerKeys } from './grant-maker.js';
import { registerSecret } from './log-capture.js';

const subtle = webcrypto.subtle;
const te = new TextEncoder();

export interface UserVault {
  userId: string;
  keys: ref.RecordKeys;
  legacyKey: Uint8Array;
}

/** A user's record keys from a fresh master key (registered as a secret). */
export async function userVault(userId: string): Promise<UserVault> {
  const mk = webcrypto.getRandomValues(new Uint8Array(32));
  registerSecret('master key (hex)', Buffer.from(mk).toString('hex'));
  registerSecret('master key (base64)', Buffer.from(mk).toString('base64'));
  return { userId, keys: ref.createRecordKeys(await ref.importRecordKeyRoot(mk)), legacyKey: mk };
}

/** The runner's public key as the reference module takes it (SPKI), with its runnerKid. */
export async function runnerOf(k: RunnerKeys): Promise<ref.RunnerKey> {
  return ref.importRunnerPublicKey(new Uint8Array(await subtle.exportKey('spki', k.publicKey)));
}

/** A record's fields as `enc:2:` at `epoch`; the plaintexts are registered as secrets. */
export async function encryptedRecord(v: UserVault, table: string, id: string, record: Record<string, unknown>, fields: string[], epoch = 0) {
  for (const f of fields) if (typeof record[f] === 'string') registerSecret('plaintext of an enc:2: field', record[f] as string);
  return ref.encryptRecord(v.keys, { userId: v.userId, table, recordId: id }, record, fields, epoch);
}

export interface SealSpec {
  header: Record<string, unknown> | string;
  /** the key table's bytes, or entries to encode */
  table: Uint8Array | { scopeKey: string; epoch: number; rk: Uint8Array }[];
  runner: ref.RunnerKey;
}

export function keyTable(entries: { scopeKey: string; epoch: number; rk: Uint8Array }[]): Uint8Array {
  const parts = entries.map((e) => ({ k: te.encode(e.scopeKey), e }));
  const out = new Uint8Array(6 + parts.reduce((n, p) => n + 6 + p.k.length + 32, 0));
  const view = new DataView(out.buffer);
  out.set([0x4d, 0x4b, 0x54, 0x32]);
  view.setUint16(4, entries.length);
  let at = 6;
  for (const p of parts) {
    view.setUint16(at, p.k.length);
    out.set(p.k, at + 2);
    view.setUint32(at + 2 + p.k.length, p.e.epoch);
    out.set(p.e.rk, at + 6 + p.k.length);
    at += 6 + p.k.length + 32;
  }
  return out;
}

/** A grant sealed as section 14 says, around any header and key table. */
export async function sealGrant(s: SealSpec): Promise<ref.GrantV2> {
  const header = typeof s.header === 'string' ? s.header : JSON.stringify(s.header);
  const table = s.table instanceof Uint8Array ? s.table : keyTable(s.table);
  const gwk = webcrypto.getRandomValues(new Uint8Array(32));
  const iv = webcrypto.getRandomValues(new Uint8Array(12));
  const aes = await subtle.importKey('raw', gwk, 'AES-GCM', false, ['encrypt']);
  const sealed = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: te.encode(header) }, aes, table));
  const packed = new Uint8Array(12 + sealed.length);
  packed.set(iv);
  packed.set(sealed, 12);
  const wrapped = new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP', label: te.encode(ref.GRANT_LABEL) }, s.runner.key, gwk));
  return { v: 2, header, wrappedKey: ref.toBase64(wrapped), keys: ref.toBase64(packed) };
}

/** A header as buildGrant writes it, with `over` replacing fields. */
export function headerOf(g: { userId: string; missionId: string; runnerKid: string; scope: string[]; issuedAt?: number; lifetimeMs?: number }, over: Record<string, unknown> = {}) {
  const issued = g.issuedAt ?? Date.now();
  return {
    typ: 'mana-ai-mission-grant', v: 2, grantId: webcrypto.randomUUID(), userId: g.userId, missionId: g.missionId,
    issuedAt: new Date(issued).toISOString(), expiresAt: new Date(issued + (g.lifetimeMs ?? 86_400_000)).toISOString(),
    runnerKid: g.runnerKid, scope: [...g.scope].sort(), ...over,
  };
}
