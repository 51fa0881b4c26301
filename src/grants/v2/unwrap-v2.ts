// Turns a v2 Mission Grant (CONTRACT.md section 14) into the record keys of
// one run, in the contract's eleven steps; the first failing step names the
// skip reason. The keys are imported non-extractable (AES-GCM, decrypt
// only); the grant key, the key table and with it every raw record key are
// zeroed as soon as they are imported. Nothing here throws, logs, caches or
// returns key bytes: a skip never fails the run.

import { webcrypto } from 'node:crypto';
import { decodeBase64Padded } from '../base64.js';
import type { RunnerKeys } from '../runner-keys.js';
import { checkHeader, headerObject, isExpired, type GrantHeader } from './header.js';
import { parseKeyTable } from './key-table.js';

export type V2SkipReason = 'not-configured' | 'malformed' | 'expired' | 'wrong-binding' | 'revoked' | 'wrap-rejected';

export interface UsableGrantV2 {
  readonly version: 2;
  readonly grantId: string;
  /** header.scope: `<table>:<id>` the user allowed; nothing else is decrypted. */
  readonly recordIds: ReadonlySet<string>;
  /** The record key of (scope key, epoch), or undefined: `no-key-for-epoch`. */
  keyFor(scopeKey: string, epoch: number): webcrypto.CryptoKey | undefined;
}

export type UnwrapV2Result = { ok: true; grant: UsableGrantV2; header: GrantHeader } | { ok: false; reason: V2SkipReason };

const GRANT_V2_LABEL = new TextEncoder().encode('mana-ai-mission-grant/v2');
const te = new TextEncoder();

export async function unwrapGrantV2(
  runnerKeys: RunnerKeys,
  raw: unknown,
  ctx: { userId: string; missionId: string; nowMs: number; isRevoked: (grantId: string) => boolean },
): Promise<UnwrapV2Result> {
  // (1)
  if (!runnerKeys.current && !runnerKeys.previous) return { ok: false, reason: 'not-configured' };
  // (2)
  const h = headerObject(raw);
  if (!h) return { ok: false, reason: 'malformed' };
  // (3)
  if (isExpired(h.fields, ctx.nowMs)) return { ok: false, reason: 'expired' };
  // (4)
  const header = checkHeader(h.fields, ctx.nowMs);
  if (!header) return { ok: false, reason: 'malformed' };
  // (5)
  if (header.userId !== ctx.userId || header.missionId !== ctx.missionId) return { ok: false, reason: 'wrong-binding' };
  // (6)
  if (ctx.isRevoked(header.grantId)) return { ok: false, reason: 'revoked' };
  // (7)
  const g = raw as Record<string, unknown>;
  const wrapped = decodeBase64Padded(g['wrappedKey']);
  const sealed = decodeBase64Padded(g['keys']);
  if (!wrapped || !sealed || sealed.length < 34) return { ok: false, reason: 'malformed' };
  // (8)
  const runner = runnerKeys.byKid(header.runnerKid);
  if (!runner || wrapped.length !== runner.modulusBytes) return { ok: false, reason: 'wrap-rejected' };
  // (9)
  let gwk: Uint8Array;
  try {
    gwk = new Uint8Array(await webcrypto.subtle.decrypt({ name: 'RSA-OAEP', label: GRANT_V2_LABEL }, runner.key, wrapped));
  } catch {
    return { ok: false, reason: 'wrap-rejected' };
  }
  let table: Uint8Array | null = null;
  try {
    if (gwk.length !== 32) return { ok: false, reason: 'malformed' };
    // (10)
    const aes = await webcrypto.subtle.importKey('raw', gwk, 'AES-GCM', false, ['decrypt']);
    try {
      table = new Uint8Array(await webcrypto.subtle.decrypt(
        { name: 'AES-GCM', iv: sealed.subarray(0, 12), additionalData: te.encode(h.header), tagLength: 128 }, aes, sealed.subarray(12)));
    } catch {
      return { ok: false, reason: 'wrap-rejected' };
    }
    // (11)
    const entries = parseKeyTable(table, header.scope);
    if (!entries) return { ok: false, reason: 'malformed' };
    const keys = new Map<string, webcrypto.CryptoKey>();
    for (const e of entries) keys.set(`${e.epoch}:${e.scopeKey}`, await webcrypto.subtle.importKey('raw', e.rk, 'AES-GCM', false, ['decrypt']));
    return {
      ok: true,
      header,
      grant: { version: 2, grantId: header.grantId, recordIds: new Set(header.scope), keyFor: (scopeKey, epoch) => keys.get(`${epoch}:${scopeKey}`) },
    };
  } finally {
    gwk.fill(0);
    table?.fill(0);
  }
}
