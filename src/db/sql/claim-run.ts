// Claims (mission, due time) through mana_ai.claim_run (sql/004): the
// unique key of mission_runs makes the run happen once across daemons and
// crashes; the function re-checks the snapshot in the same statement.

import type pg from 'pg';

export type ClaimResult =
  | { outcome: 'claimed'; runId: number; attempts: number; userId: string; missionId: string; record: Record<string, unknown>; version: number }
  | { outcome: 'moved' | 'finished' }
  | { outcome: 'held' | 'throttled'; retryAtMs: number };

export async function claimRun(pool: pg.Pool, q: { sid: number; dueMs: number; workerId: string; leaseMs: number; minGapMs: number }): Promise<ClaimResult> {
  const { rows } = await pool.query(
    `SELECT outcome, run_id, attempts, retry_at, user_id, mission_id, record, version
       FROM mana_ai.claim_run($1, $2::timestamptz, $3, make_interval(secs => $4::float8 / 1000), make_interval(secs => $5::float8 / 1000))`,
    [q.sid, new Date(q.dueMs).toISOString(), q.workerId, q.leaseMs, q.minGapMs],
  );
  const r = rows[0];
  switch (r.outcome) {
    case 'claimed':
      return { outcome: 'claimed', runId: r.run_id, attempts: r.attempts, userId: r.user_id, missionId: r.mission_id, record: r.record, version: r.version };
    case 'held':
    case 'throttled':
      return { outcome: r.outcome, retryAtMs: (r.retry_at as Date).getTime() };
    default:
      return { outcome: r.outcome };
  }
}
