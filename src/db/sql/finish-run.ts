// Ends a claimed run without a write-back (skipped, cancelled), hands one
// back counted (a failure outside the mission) or uncounted (parked, waiting
// for research or for a planning slot), or hands
// claims back on shutdown so another daemon or the next start takes them
// at once instead of waiting for the lease to run out.

import type pg from 'pg';
import type { RunStatus } from '../schema.js';
import type { Iteration } from '../../write-back/iteration.js';

export async function finishRun(pool: pg.Pool, q: { runId: number; workerId: string; attempts: number; status: Extract<RunStatus, 'skipped' | 'cancelled' | 'failed'>; error: string | null }): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE mana_ai.mission_runs
        SET status = $4, error = $5, finished_at = now(), lease_until = NULL
      WHERE run_id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'`,
    [q.runId, q.workerId, q.attempts, q.status, q.error],
  );
  return rowCount === 1;
}

/**
 * Gives one claim back after a failure outside the mission (the database,
 * the connection, a lock): released without a notification, so nobody
 * retries at once; the daemon that gave it back retries after its backoff,
 * and any daemon that loads the mission's partition claims it again.
 */
export async function giveBackRun(pool: pg.Pool, q: { runId: number; workerId: string; attempts: number; error: string; plan: PendingPlan | null }): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE mana_ai.mission_runs
        SET status = 'released', claimed_by = NULL, lease_until = now(), error = $4,
            pending_plan = coalesce($5::jsonb, pending_plan)
      WHERE run_id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'`,
    [q.runId, q.workerId, q.attempts, q.error, q.plan === null ? null : JSON.stringify(q.plan)],
  );
  return rowCount === 1;
}

/** Hands a claim back as it was (its attempt not counted): a parked mission, a run waiting for its deep research, or one that waited too long for a planning slot; looked at again later. */
export async function releaseUncounted(pool: pg.Pool, q: { runId: number; workerId: string; attempts: number; why?: 'parked' | 'research-pending' | 'slot-wait' }): Promise<void> {
  await pool.query(
    `UPDATE mana_ai.mission_runs
        SET status = 'released', claimed_by = NULL, lease_until = now(), attempts = attempts - 1, error = $4
      WHERE run_id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'`,
    [q.runId, q.workerId, q.attempts, q.why ?? 'parked'],
  );
}

/** What a run had planned when its write-back failed outside the mission (sql/migrations/020_baseline.sql). */
export interface PendingPlan {
  iteration: Iteration;
  failure: string | null;
  usage: { tokens: number; estimated: boolean } | null;
  /** the deep research job whose answer the plan used (issue 31): marked used when this plan is written */
  researchJobId?: number | null;
}

/** The plan an earlier attempt of this run left behind, if any. */
export async function readPendingPlan(pool: pg.Pool, runId: number): Promise<PendingPlan | null> {
  const { rows } = await pool.query<{ pending_plan: PendingPlan | null }>('SELECT pending_plan FROM mana_ai.mission_runs WHERE run_id = $1', [runId]);
  const p = rows[0]?.pending_plan;
  return p && typeof p === 'object' && p.iteration && typeof p.iteration === 'object' ? p : null;
}

/** Gives back the given runs; notifies so that listeners re-arm them now. */
export async function releaseRuns(pool: pg.Pool, q: { runIds: number[]; workerId: string }): Promise<number> {
  if (q.runIds.length === 0) return 0;
  const { rows } = await pool.query(
    `WITH released AS (
       UPDATE mana_ai.mission_runs r
          SET status = 'released', lease_until = now(), claimed_by = NULL
        WHERE r.run_id = ANY($1::bigint[]) AND r.claimed_by = $2 AND r.status = 'running'
        RETURNING r.sid, r.due_at)
     SELECT count(*)::int AS n,
            count(pg_notify('mana_ai_missions', json_build_object('s', s.sid, 'v', s.version, 'p', s.partition,
                                                                  'd', mana_ai.schedulable_due_ms(s.state, s.deleted, s.next_run_at), 'r', 1, 'g', s.agent_ref, 'u', s.user_ref)::text))::int AS notified
       FROM released x JOIN mana_ai.mission_snapshots s ON s.sid = x.sid`,
    [q.runIds, q.workerId],
  );
  return rows[0]?.n ?? 0;
}
