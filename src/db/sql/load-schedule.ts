// Loads what the reactor schedules: every active, non-deleted mission with a
// next run, as (sid, version, due ms, agent ref). Keyset pages by sid, so a million
// rows never sit in one result. Ids and records stay in the database.

import type pg from 'pg';

export interface ScheduleRow {
  sid: number;
  version: number;
  partition: number;
  dueMs: number;
  /** the mission's agent (sql/012 agent_ref), null = none */
  agentRef: number | null;
}

export async function loadSchedule(pool: pg.Pool, opts: { pageSize?: number; partitions?: readonly number[] } = {}): Promise<ScheduleRow[]> {
  const pageSize = opts.pageSize ?? 20_000;
  const out: ScheduleRow[] = [];
  let after = 0;
  for (;;) {
    const { rows } = await pool.query<[number, number, number, number, number | null]>({
      text: `SELECT sid, version, partition, mana_ai.schedulable_due_ms(state, deleted, next_run_at), agent_ref
               FROM mana_ai.mission_snapshots
              WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL
                AND sid > $1 AND ($3::int[] IS NULL OR partition = ANY($3::int[]))
              ORDER BY sid
              LIMIT $2`,
      values: [after, pageSize, opts.partitions ? [...opts.partitions] : null],
      rowMode: 'array',
    });
    for (const r of rows) out.push({ sid: r[0], version: r[1], partition: r[2], dueMs: r[3], agentRef: r[4] });
    if (rows.length < pageSize) return out;
    after = rows[rows.length - 1]![0];
  }
}

/** Missions of these partitions due now (for POST /internal/tick). */
export async function loadDueNow(pool: pg.Pool, q: { partitions: readonly number[] }): Promise<ScheduleRow[]> {
  const { rows } = await pool.query<[number, number, number, number, number | null]>({
    text: `SELECT sid, version, partition, mana_ai.schedulable_due_ms(state, deleted, next_run_at), agent_ref
             FROM mana_ai.mission_snapshots
            WHERE state = 'active' AND NOT deleted AND next_run_at <= now() AND partition = ANY($1::int[])
            ORDER BY next_run_at`,
    values: [[...q.partitions]],
    rowMode: 'array',
  });
  return rows.map((r) => ({ sid: r[0], version: r[1], partition: r[2], dueMs: r[3], agentRef: r[4] }));
}
