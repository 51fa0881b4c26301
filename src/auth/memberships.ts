// The shared spaces a user belongs to, from mana-auth (CONTRACT.md section
// 12): GET /api/v1/internal/users/:id/memberships with the service key,
// cached per user for MANA_AI_MEMBERSHIPS_CACHE_MS (5 min, as mana-sync
// caches it), so the runner sees exactly the shared-space rows the owner's
// devices see. An unreachable or odd mana-auth gives null: the run goes on
// without shared-space inputs, counted, never failed. Never logs the key.

import { undici } from '../lazy-undici.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { coerceError } from '../coerce-error.js';

export interface MembershipsOptions {
  authUrl: string;
  serviceKey: string | undefined;
  cacheMs: number;
  timeoutMs?: number;
  /** users kept in the cache at most; the oldest entry goes first */
  maxEntries?: number;
  now?: () => number;
}

export class Memberships {
  private readonly cache = new Map<string, { at: number; spaces: string[] }>();

  constructor(
    private readonly opts: MembershipsOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** The user's space ids, or null when mana-auth could not say. */
  async of(userId: string): Promise<string[] | null> {
    const now = (this.opts.now ?? Date.now)();
    const hit = this.cache.get(userId);
    if (hit && now - hit.at < this.opts.cacheMs) return hit.spaces;
    try {
      const timeout = this.opts.timeoutMs ?? 3_000;
      const res = await (await undici()).request(`${this.opts.authUrl}/api/v1/internal/users/${encodeURIComponent(userId)}/memberships`, {
        method: 'GET',
        headers: { 'x-service-key': this.opts.serviceKey ?? '', accept: 'application/json' },
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new Error(`mana-auth answered ${res.statusCode}`);
      }
      const spaces = parseMemberships(await res.body.json());
      if (!spaces) throw new Error('mana-auth answered without a memberships list');
      this.cache.delete(userId);
      this.cache.set(userId, { at: now, spaces });
      if (this.cache.size > (this.opts.maxEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
      this.metrics.membershipLookups.inc({ outcome: 'ok' });
      return spaces;
    } catch (error) {
      this.metrics.membershipLookups.inc({ outcome: 'unavailable' });
      this.log.warn({ userId, err: coerceError(error).message }, 'mana-auth memberships unavailable; planning without shared-space inputs');
      return null;
    }
  }
}

/** `{"memberships": [{"organizationId": "<space id>", ...}]}` -> the space ids; null for anything else. */
export function parseMemberships(body: unknown): string[] | null {
  if (!body || typeof body !== 'object' || !Array.isArray((body as { memberships?: unknown }).memberships)) return null;
  const ids = new Set<string>();
  for (const m of (body as { memberships: unknown[] }).memberships) {
    const id = m && typeof m === 'object' ? (m as { organizationId?: unknown }).organizationId : undefined;
    // a comma would split one id into two in app.current_user_space_ids
    if (typeof id === 'string' && id.length > 0 && id.length <= 256 && !id.includes(',')) ids.add(id);
  }
  return [...ids].sort();
}
