// Writes a finished run back, atomically: in one transaction scoped to the
// mission's user, the run is marked finished (only if this daemon still
// holds the claim) and the sync_changes row of CONTRACT.md section 5 is
// inserted (new iteration appended, updatedAt, nextRunAt). Both commit or
// neither does. The trigger then updates the snapshot and its NOTIFY
// reschedules the mission: there is no second code path.

import { sql } from 'kysely';
import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { insertChange } from '../db/sql/insert-change.js';
import type { Iteration } from './iteration.js';

export const RUNNER_CLIENT_ID = 'mana-ai-runner';
export const RUNNER_ACTOR = { kind: 'system', source: 'mission-runner' } as const;

export interface WriteBackInput {
  runId: number;
  workerId: string;
  attempts: number;
  sid: number;
  userId: string;
  missionId: string;
  iteration: Iteration;
  nextRunAtMs: number | null;
  nowMs: number;
}

export type WriteBackOutcome = 'written' | 'lost-claim' | 'mission-gone';

class LostClaim extends Error {}

export async function writeBack(db: Db, w: WriteBackInput): Promise<WriteBackOutcome> {
  try {
    return await withUserScope(db, w.userId, async (trx) => {
      const snap = await trx
        .selectFrom('mana_ai.mission_snapshots')
        .select(['record', 'deleted'])
        .where('sid', '=', w.sid)
        .forUpdate()
        .executeTakeFirst();
      const gone = !snap || snap.deleted;
      const finished = await sql<{ run_id: number }>`
        UPDATE mana_ai.mission_runs
           SET status = ${gone ? 'cancelled' : w.iteration.overallStatus === 'failed' ? 'failed' : 'done'},
               iteration_id = ${gone ? null : w.iteration.id},
               error = ${gone ? 'mission deleted during the run' : null},
               finished_at = now(), lease_until = NULL
         WHERE run_id = ${w.runId} AND claimed_by = ${w.workerId} AND attempts = ${w.attempts} AND status = 'running'
         RETURNING run_id`.execute(trx);
      if (finished.rows.length !== 1) throw new LostClaim();
      if (gone) return 'mission-gone' as const;
      const now = new Date(w.nowMs).toISOString();
      const previous = Array.isArray(snap.record['iterations']) ? snap.record['iterations'] : [];
      const data = {
        iterations: [...previous, w.iteration],
        updatedAt: now,
        nextRunAt: w.nextRunAtMs === null ? null : new Date(w.nextRunAtMs).toISOString(),
      };
      const fieldTimestamps = Object.fromEntries(Object.keys(data).map((k) => [k, now]));
      await insertChange(trx, {
        appId: 'ai',
        tableName: 'aiMissions',
        recordId: w.missionId,
        userId: w.userId,
        op: 'update',
        data,
        fieldTimestamps,
        clientId: RUNNER_CLIENT_ID,
        actor: RUNNER_ACTOR,
      });
      return 'written' as const;
    });
  } catch (error) {
    if (error instanceof LostClaim) return 'lost-claim';
    throw error;
  }
}
