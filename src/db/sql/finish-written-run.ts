// The write-back's second statement, after the snapshot's lock
// (lock-snapshot.ts): the run ends in the same transaction as the
// sync_changes row that carries its iteration, so a run is finished exactly
// when its iteration is written. Never ends a run this claim does not hold.

import { sql } from 'kysely';
import type { RunStatus } from '../schema.js';
import type { ScopedTx } from '../scoped.js';

/** False: the run is no longer this claim's (written, given back or taken by a peer meanwhile). */
export async function finishWrittenRun(
  trx: ScopedTx,
  q: { runId: number; workerId: string; attempts: number; status: Extract<RunStatus, 'done' | 'failed' | 'cancelled'>; iterationId: string | null; error: string | null; promptVersion: string | null },
): Promise<boolean> {
  const { rows } = await sql<{ run_id: number }>`
    UPDATE mana_ai.mission_runs
       SET status = ${q.status}, iteration_id = ${q.iterationId}, error = ${q.error},
           finished_at = now(), lease_until = NULL, pending_plan = NULL, prompt_version = ${q.promptVersion}
     WHERE run_id = ${q.runId} AND claimed_by = ${q.workerId} AND attempts = ${q.attempts} AND status = 'running'
     RETURNING run_id`.execute(trx);
  return rows.length === 1;
}
