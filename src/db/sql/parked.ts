// Parked missions (sql/migrations/020_baseline.sql, 022): the dead-letter. A
// mission whose runs failed MANA_AI_MAX_CONSECUTIVE_FAILURES times in a row
// for reasons of its own is parked by the write-back that recorded the last
// failure; it stays parked until its user changes it (the trigger unparks
// it, sql/functions/unpark.sql) or an operator runs mana_ai.unpark_all.
// Failures outside the mission (the database, mana-llm) never count, and
// the streak starts again at an unpark.

import { sql } from 'kysely';
import type pg from 'pg';
import type { ScopedTx } from '../scoped.js';

/** A failed run's error when the failure was outside the mission: it never counts towards the park. */
export const OUTSIDE_FAILURE = 'outside';

/**
 * The latest finished runs of a mission since it was last unparked, newest
 * first, leaving out failures outside the mission: how many of its own
 * failed in a row (this run included).
 */
export async function consecutiveFailures(trx: ScopedTx, q: { runId: number; limit: number }): Promise<number> {
  const { rows } = await sql<{ status: string }>`
    WITH m AS (SELECT x.mission_key FROM mana_ai.mission_runs x WHERE x.run_id = ${q.runId})
    SELECT r.status FROM mana_ai.mission_runs r, m
     WHERE r.mission_key = m.mission_key
       AND r.status IN ('done', 'failed')
       AND r.error IS DISTINCT FROM ${OUTSIDE_FAILURE}
       AND r.finished_at > coalesce((SELECT u.unparked_at FROM mana_ai.unparked u WHERE u.mission_key = m.mission_key), '-infinity')
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
  await sql`UPDATE mana_ai.mission_snapshots SET parked = true WHERE sid = ${q.sid}`.execute(trx);
  await sql`
    INSERT INTO mana_ai.parked (mission_key, sid, user_id, mission_id, parked_version, failures, last_error)
    SELECT s.mission_key, s.sid, s.user_id, s.mission_id, s.version, ${q.failures}, ${q.lastError}
      FROM mana_ai.mission_snapshots s WHERE s.sid = ${q.sid}
    ON CONFLICT (mission_key) DO UPDATE
       SET sid = EXCLUDED.sid, parked_version = EXCLUDED.parked_version, failures = EXCLUDED.failures,
           last_error = EXCLUDED.last_error, parked_at = now()`.execute(trx);
}

/** Parked missions now (the gauge; the alert ManaAIMissionsParked). */
export async function countParked(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM mana_ai.parked_missions');
  return Number(rows[0]?.n ?? 0);
}
