// Ends a claimed run without a write-back (skipped, cancelled), or hands
// claims back on shutdown so another daemon or the next start takes them
// at once instead of waiting for the lease to run out.

import type pg from 'pg';
import type { RunStatus } from '../schema.js';

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
export async function giveBackRun(pool: pg.Pool, q: { runId: number; workerId: string; attempts: number; error: string }): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE mana_ai.mission_runs
        SET status = 'released', claimed_by = NULL, lease_until = now(), error = $4
      WHERE run_id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'`,
    [q.runId, q.workerId, q.attempts, q.error],
  );
  return rowCount === 1;
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
