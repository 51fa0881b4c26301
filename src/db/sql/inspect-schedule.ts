// The operator's view of the schedule (`npm run inspect`): every mission's
// state, next run and last run outcome from mana_ai.mission_schedule, plus
// the trigger's recent fold errors for the same missions. Read-only.

import type pg from 'pg';

export interface ScheduleRow {
  userId: string;
  missionId: string;
  title: string | null;
  state: string | null;
  deleted: boolean;
  cadence: string | null;
  nextRunAt: string | null;
  overdueSeconds: number | null;
  iterations: number;
  lastRunStatus: string | null;
  lastRunDueAt: string | null;
  lastRunError: string | null;
  snapshotErrors: number;
  /** parked after failing repeatedly (sql/migrations/020_baseline.sql) */
  parked: boolean;
}

export async function inspectSchedule(pool: pg.Pool, q: { userId?: string | undefined; limit: number }): Promise<ScheduleRow[]> {
  const { rows } = await pool.query(
    `SELECT s.user_id, s.mission_id, s.title, s.state, s.deleted, s.cadence_kind, s.next_run_at,
            CASE WHEN s.state = 'active' AND NOT s.deleted AND s.next_run_at <= now()
                 THEN extract(epoch FROM now() - s.next_run_at)::float8 END AS overdue_s,
            s.iteration_count, s.last_run_status, s.last_run_due_at, s.last_run_error,
            (SELECT count(*)::int FROM mana_ai.snapshot_errors e
              WHERE e.user_id = s.user_id AND e.record_id = s.mission_id) AS snapshot_errors,
            EXISTS (SELECT 1 FROM mana_ai.parked_missions p WHERE p.sid = s.sid) AS parked
       FROM mana_ai.mission_schedule s
      WHERE ($1::text IS NULL OR s.user_id = $1)
      ORDER BY s.next_run_at NULLS LAST, s.user_id, s.mission_id
      LIMIT $2`,
    [q.userId ?? null, q.limit],
  );
  return rows.map((r) => ({
    userId: r.user_id,
    missionId: r.mission_id,
    title: r.title,
    state: r.state,
    deleted: r.deleted,
    cadence: r.cadence_kind,
    nextRunAt: r.next_run_at ? (r.next_run_at as Date).toISOString() : null,
    overdueSeconds: r.overdue_s === null ? null : Math.round(r.overdue_s),
    iterations: r.iteration_count,
    lastRunStatus: r.last_run_status,
    lastRunDueAt: r.last_run_due_at ? (r.last_run_due_at as Date).toISOString() : null,
    lastRunError: r.last_run_error,
    snapshotErrors: r.snapshot_errors,
    parked: r.parked,
  }));
}
