// Parked missions (sql/migrations/020_baseline.sql): the dead-letter. A mission whose runs failed
// MANA_AI_MAX_CONSECUTIVE_FAILURES times in a row is parked by the
// write-back that recorded the last failure, with the snapshot version that
// write-back left; it stays parked while that version stands.

import { sql } from 'kysely';
import type pg from 'pg';
import type { ScopedTx } from '../scoped.js';

/** The latest finished runs of a mission, newest first: how many failed in a row (this run included). */
export async function consecutiveFailures(trx: ScopedTx, q: { runId: number; limit: number }): Promise<number> {
  const { rows } = await sql<{ status: string }>`
    SELECT r.status FROM mana_ai.mission_runs r
     WHERE r.mission_key = (SELECT x.mission_key FROM mana_ai.mission_runs x WHERE x.run_id = ${q.runId})
       AND r.status IN ('done', 'failed')
     ORDER BY r.due_at DESC
     LIMIT ${q.limit}`.execute(trx);
  let n = 0;
  for (const r of rows) {
    if (r.status !== 'failed') break;
    n += 1;
  }
  return n;
}

/** Parks the mission at the snapshot version its write-back just left (called after that write's insert, in its transaction). */
export async function parkMission(trx: ScopedTx, q: { sid: number; failures: number; lastError: string }): Promise<void> {
  await sql`
    INSERT INTO mana_ai.parked (mission_key, sid, user_id, mission_id, parked_version, failures, last_error)
    SELECT s.mission_key, s.sid, s.user_id, s.mission_id, s.version, ${q.failures}, ${q.lastError}
      FROM mana_ai.mission_snapshots s WHERE s.sid = ${q.sid}
    ON CONFLICT (mission_key) DO UPDATE
       SET sid = EXCLUDED.sid, parked_version = EXCLUDED.parked_version, failures = EXCLUDED.failures,
           last_error = EXCLUDED.last_error, parked_at = now()`.execute(trx);
}

/** The version a mission was parked at, or null. */
export async function parkedVersion(pool: pg.Pool, sid: number): Promise<number | null> {
  const { rows } = await pool.query<{ v: number }>('SELECT parked_version AS v FROM mana_ai.parked WHERE sid = $1', [sid]);
  return rows[0] ? Number(rows[0].v) : null;
}

/** The user changed the mission since it was parked: it runs again. */
export async function unpark(pool: pg.Pool, sid: number): Promise<void> {
  await pool.query('DELETE FROM mana_ai.parked WHERE sid = $1', [sid]);
}

/** Hands a parked mission's claim back as it was (its attempt not counted): looked at again later. */
export async function releaseParkedClaim(pool: pg.Pool, q: { runId: number; workerId: string; attempts: number }): Promise<void> {
  await pool.query(
    `UPDATE mana_ai.mission_runs
        SET status = 'released', claimed_by = NULL, lease_until = now(), attempts = attempts - 1, error = 'parked'
      WHERE run_id = $1 AND claimed_by = $2 AND attempts = $3 AND status = 'running'`,
    [q.runId, q.workerId, q.attempts],
  );
}

/** Parked missions now (the gauge; the alert ManaAIMissionsParked). */
export async function countParked(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mana_ai.parked_missions');
  return Number(rows[0]?.n ?? 0);
}
