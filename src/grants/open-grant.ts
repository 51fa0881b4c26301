// Opens a mission's grant for one run: section 7's v1 when `grant.v` is
// not 2, section 14's v2 otherwise (CONTRACT.md). For v2 it reads the
// mission's grant state (what the trigger saw, sql/functions/grant-state.sql)
// in the owner's scope, chooses the grant that serves (grant-choice.ts)
// and unwraps it. Every skip is counted by reason and logged without any
// grant material; none throws, and none fails the run: the mission is
// planned with its plaintext inputs. The keys returned live for this run.

import { withUserScope } from '../db/scoped.js';
import { readGrantState } from '../db/sql/grant-state.js';
import type { Db } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { coerceError } from '../coerce-error.js';
import { unwrapGrant, type GrantSkipReason, type UsableGrant } from './unwrap.js';
import type { RunnerKeys } from './runner-keys.js';
import { chooseGrant } from './v2/grant-choice.js';
import { unwrapGrantV2 } from './v2/unwrap-v2.js';

export interface OpenGrantDeps {
  db: Db;
  runnerKeys: RunnerKeys;
  metrics: Metrics;
  log: Logger;
}

const isV2 = (g: unknown) => typeof g === 'object' && g !== null && (g as Record<string, unknown>)['v'] === 2;

export async function openGrant(
  deps: OpenGrantDeps,
  run: { userId: string; missionId: string },
  grant: unknown,
  nowMs = Date.now(),
): Promise<UsableGrant | null> {
  const skip = (reason: GrantSkipReason, extra: Record<string, unknown> = {}) => {
    deps.metrics.grantSkips.inc({ reason });
    deps.log.warn({ reason, ...extra }, reason === 'revoked' && extra['serving']
      ? 'mission grant refused (revoked or older than the newest seen); the newest live grant serves'
      : 'mission grant not usable; planning without its encrypted inputs');
  };
  try {
    if (!isV2(grant)) {
      const r = await unwrapGrant(deps.runnerKeys.current?.key ?? null, grant, { missionId: run.missionId, nowMs });
      if (r.ok) return r.grant;
      skip(r.reason, { grantVersion: 1 });
      return null;
    }
    const seen = await withUserScope(deps.db, run.userId, (trx) => readGrantState(trx, run));
    const choice = chooseGrant(grant, seen);
    if (choice.refused) skip('revoked', { grantVersion: 2, serving: true });
    const r = await unwrapGrantV2(deps.runnerKeys, choice.serve, { ...run, nowMs, isRevoked: (id) => choice.revoked.has(id) });
    if (r.ok) return r.grant;
    skip(r.reason, { grantVersion: 2 });
    return null;
  } catch (error) {
    // Not one of the contract's reasons: the state could not be read, or Web Crypto refused a key. Planned without it.
    deps.log.warn({ err: coerceError(error).message }, 'mission grant could not be opened; planning without its encrypted inputs');
    return null;
  }
}
