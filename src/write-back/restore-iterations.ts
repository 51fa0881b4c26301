// Restores iterations a stale device's write erased (issue 28; CONTRACT.md
// section 13): one repair row per mission, in one transaction scoped to
// its user, under the snapshot's row lock (the trigger's and the
// write-back's lock, in the same order). The row carries only
// `iterations` (and `updatedAt` for the seed's webapp, as every runner
// write does: sections 5 and 11), whose value is the current folded array
// plus every lost iteration, each id once (iteration-union.ts); its
// timestamp is now, or just after the array's stored one if a device's
// clock is ahead, so the repair wins the merge. It never touches another
// field, never writes into a deleted mission, and writes nothing when
// nothing is missing; the losses it settles are marked in the same
// transaction, so each loss is repaired once, from any daemon.

import type pg from 'pg';
import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { insertChange } from '../db/sql/insert-change.js';
import { lockPendingLosses, lockSnapshotForRepair, readLoss, settleLosses } from '../db/sql/lost-iterations.js';
import { agentActor } from '../agent/agent.js';
import { plainText } from '../mission/mission.js';
import { compareCodePoints } from '../merge/merge.js';
import { unionWithLost } from './iteration-union.js';
import { LEGACY_AI, RUNNER_ACTOR, RUNNER_CLIENT_ID } from './write-back.js';

export type RestoreOutcome = 'restored' | 'present' | 'deleted' | 'not-pending';

export interface RestoreResult {
  outcome: RestoreOutcome;
  userId?: string;
  missionId?: string;
  /** the ids written back */
  restored: unknown[];
}

/** One millisecond after `iso` (an ISO time), or `iso` itself when it does not parse. */
function justAfter(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? new Date(ms + 1).toISOString() : iso;
}

export async function restoreLostIterations(db: Db, pool: pg.Pool, q: { lossId: number; generation: 'v0.4' | 'head'; nowMs: number }): Promise<RestoreResult> {
  const loss = await readLoss(pool, q.lossId);
  if (!loss || loss.restored) return { outcome: 'not-pending', restored: [] };
  const who = { userId: loss.userId, missionId: loss.missionId };
  return withUserScope(db, loss.userId, async (trx) => {
    const snap = await lockSnapshotForRepair(trx, loss.missionKey);
    const pending = await lockPendingLosses(trx, loss.missionKey);
    if (pending.length === 0) return { outcome: 'not-pending' as const, ...who, restored: [] };
    const ids = pending.map((p) => p.id);
    if (!snap || snap.deleted) {
      await settleLosses(trx, ids, 'deleted');
      return { outcome: 'deleted' as const, ...who, restored: [] };
    }
    const union = unionWithLost(snap.record['iterations'], pending.map((p) => p.iterations));
    if (union.iterations === null) {
      await settleLosses(trx, ids, 'present');
      return { outcome: 'present' as const, ...who, restored: [] };
    }
    const nowIso = new Date(q.nowMs).toISOString();
    const stored = typeof snap.fieldTs['iterations'] === 'string' ? snap.fieldTs['iterations'] : '';
    const ts = compareCodePoints(nowIso, stored) > 0 ? nowIso : justAfter(stored);
    const data: Record<string, unknown> = q.generation === 'head' ? { iterations: union.iterations } : { iterations: union.iterations, updatedAt: ts };
    const row = await insertChange(trx, {
      appId: 'ai',
      tableName: 'aiMissions',
      recordId: loss.missionId,
      userId: loss.userId,
      op: 'update',
      data,
      fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ts])),
      clientId: RUNNER_CLIENT_ID,
      spaceId: null,
      actor: q.generation === 'head'
        ? agentActor({ ...LEGACY_AI, missionId: loss.missionId, iterationId: String(union.restored[0]), rationale: plainText(snap.record, 'objective') })
        : RUNNER_ACTOR,
    });
    await settleLosses(trx, ids, 'restored', row.id);
    return { outcome: 'restored' as const, ...who, restored: union.restored };
  });
}
