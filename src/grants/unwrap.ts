// Turns a mission's grant (CONTRACT.md section 7) into a key for one run:
// expiry check, RSA-OAEP/SHA-256 unwrap of the MDK, import as a
// non-extractable AES-GCM key, the raw bytes zeroed at once. Every failure
// is exactly one of four reasons; none of them throws, since a failed
// unwrap never fails the run (the mission is planned without its encrypted
// inputs). Nothing here logs, caches or returns key bytes.

import { webcrypto } from 'node:crypto';
import * as v from 'valibot';
import { decodeBase64Strict } from './base64.js';
import type { UsableGrantV2 } from './v2/unwrap-v2.js';

/**
 * The contract's reasons: section 7's four, and section 14's two for v2
 * (`wrong-binding`, `revoked`); `mana_ai_grant_skips_total{reason}` exports
 * each at 0 from the start.
 */
export const GRANT_SKIP_REASONS = ['not-configured', 'expired', 'malformed', 'wrap-rejected', 'wrong-binding', 'revoked'] as const;
export type GrantSkipReason = (typeof GRANT_SKIP_REASONS)[number];

export interface UsableGrantV1 {
  readonly version: 1;
  /** AES-256-GCM, non-extractable, decrypt only. Lives for one run. */
  readonly key: webcrypto.CryptoKey;
  /** `<table>:<id>` entries the user allowed; nothing else is decrypted. */
  readonly recordIds: ReadonlySet<string>;
}

/** A grant's keys for one run: v1 (one MDK) or v2 (a record key per scope entry and epoch). */
export type UsableGrant = UsableGrantV1 | UsableGrantV2;

export type UnwrapResult = { ok: true; grant: UsableGrantV1 } | { ok: false; reason: GrantSkipReason };

const GrantSchema = v.object({
  wrappedKey: v.string(),
  derivation: v.object({
    version: v.literal('v1'),
    missionId: v.string(),
    tables: v.array(v.string()),
    recordIds: v.array(v.string()),
  }),
  expiresAt: v.unknown(),
});

export async function unwrapGrant(
  privateKey: webcrypto.CryptoKey | null,
  raw: unknown,
  ctx: { missionId: string; nowMs: number },
): Promise<UnwrapResult> {
  if (!privateKey) return { ok: false, reason: 'not-configured' };
  // Expiry first: an expired grant is "expired" even when other parts are
  // broken, and its expiresAt is the one field the contract says to read
  // leniently (unparseable counts as expired).
  const expiresAt = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>)['expiresAt'] : undefined;
  const expiresMs = typeof expiresAt === 'string' ? Date.parse(expiresAt) : NaN;
  if (!Number.isFinite(expiresMs) || expiresMs <= ctx.nowMs) return { ok: false, reason: 'expired' };

  const parsed = v.safeParse(GrantSchema, raw);
  if (!parsed.success) return { ok: false, reason: 'malformed' };
  const g = parsed.output;
  // The MDK is salted with the mission id; a grant copied onto another
  // mission is not this mission's grant.
  if (g.derivation.missionId !== ctx.missionId) return { ok: false, reason: 'malformed' };
  const wrapped = decodeBase64Strict(g.wrappedKey);
  if (!wrapped) return { ok: false, reason: 'malformed' };

  let mdk: Uint8Array;
  try {
    mdk = new Uint8Array(await webcrypto.subtle.decrypt({ name: 'RSA-OAEP' }, privateKey, wrapped));
  } catch {
    return { ok: false, reason: 'wrap-rejected' };
  }
  try {
    if (mdk.byteLength !== 32) return { ok: false, reason: 'malformed' };
    const key = await webcrypto.subtle.importKey('raw', mdk, { name: 'AES-GCM' }, false, ['decrypt']);
    return { ok: true, grant: { version: 1, key, recordIds: new Set(g.derivation.recordIds) } };
  } finally {
    mdk.fill(0);
  }
}
