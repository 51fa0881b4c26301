// Loads what the reactor schedules: every active, non-deleted mission with a
// next run, as (sid, version, partition, due ms, agent ref, user ref).
// Keyset pages by sid, handed over one page at a time (the next page is
// already being read while the caller takes in this one), so a million
// rows never sit in memory at once: the load's peak is two pages of
// arrays. Ids and records stay in the database.

import type pg from 'pg';

/** [sid, version, partition, dueMs, agentRef | null, userRef] */
export type ScheduleRow = [sid: number, version: number, partition: number, dueMs: number, agentRef: number | null, userRef: number];

const COLUMNS = `sid, version, partition, mana_ai.schedulable_due_ms(state, deleted, next_run_at), agent_ref, user_ref`;

function readPage(pool: pg.Pool, after: number, pageSize: number, partitions: readonly number[] | null): Promise<ScheduleRow[]> {
  return pool.query<ScheduleRow>({
    text: `SELECT ${COLUMNS}
             FROM mana_ai.mission_snapshots
            WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL
              AND sid > $1 AND ($3::int[] IS NULL OR partition = ANY($3::int[]))
            ORDER BY sid
            LIMIT $2`,
    values: [after, pageSize, partitions ? [...partitions] : null],
    rowMode: 'array',
  }).then((r) => r.rows);
}

/** The schedule of these partitions (all when omitted), page by page. */
export async function* loadSchedule(pool: pg.Pool, opts: { pageSize?: number; partitions?: readonly number[] } = {}): AsyncGenerator<ScheduleRow[]> {
  const pageSize = opts.pageSize ?? 20_000;
  const partitions = opts.partitions ?? null;
  let page = await readPage(pool, 0, pageSize, partitions);
  for (;;) {
    const full = page.length === pageSize;
    // read ahead: the database works on the next page while the caller takes this one
    const next = full ? readPage(pool, page[page.length - 1]![0], pageSize, partitions) : null;
    // a failed read-ahead is reported by the await below, not as an unhandled rejection
    next?.catch(() => {});
    yield page;
    if (!next) return;
    page = await next;
  }
}

/** Missions of these partitions due now (for POST /internal/tick). */
export async function loadDueNow(pool: pg.Pool, q: { partitions: readonly number[] }): Promise<ScheduleRow[]> {
  const { rows } = await pool.query<ScheduleRow>({
    text: `SELECT ${COLUMNS}
             FROM mana_ai.mission_snapshots
            WHERE state = 'active' AND NOT deleted AND next_run_at <= now() AND partition = ANY($1::int[])
            ORDER BY next_run_at`,
    values: [[...q.partitions]],
    rowMode: 'array',
  });
  return rows;
}
