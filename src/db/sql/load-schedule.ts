// Loads what the reactor schedules: every active, non-deleted mission with a
// next run, as (sid, version, partition, due ms, agent ref, user ref).
//
// Binary COPY streams the six columns (issue 30: 1M missions scheduled in
// 3 s). The rows arrive in socket-sized chunks, are repacked into
// SchedulePages of 44-byte records (src/db/sql/schedule-copy-reader.ts) and
// handed to the caller as they fill, so PostgreSQL produces the next rows
// while the caller takes in a page, and the load's peak memory is a page
// plus what the stream buffers. Ids and records stay in the database.
// Measured against the keyset pages of packed bytea it replaces (two
// streams): 1.0-1.4 s of one backend per million rows, against 2.5 s of two.

import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { ScheduleCopyReader } from './schedule-copy-reader.js';
import type { SchedulePage } from './schedule-page.js';

/** [sid, version, partition, dueMs, agentRef | null, userRef] (POST /internal/tick's small answers). */
export type ScheduleRow = [sid: number, version: number, partition: number, dueMs: number, agentRef: number | null, userRef: number];

// COPY takes no bind parameters: the partitions and the range of blocks
// travel as settings of the load's own transaction (set_config with
// is_local), each read once: the block bounds as initplans (a TID range
// scan, which costs what a sequential scan does: a range of sids made it an
// index scan, 20-40% slower), the partitions through a hashed IN (one
// lookup a row, where `= ANY(array)` of a value the planner cannot see
// compared each row with up to 64 entries). The WHERE clause is
// mana_ai.schedulable_due_ms()'s condition; the due time itself is computed
// by the reader from the timestamp's binary form.
const COPY_SCHEDULE = `COPY (
  SELECT sid, version, partition, next_run_at, coalesce(agent_ref, -1), user_ref
    FROM mana_ai.mission_snapshots
   WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL
     AND ctid >= (SELECT current_setting('mana_ai.load_from')::tid)
     AND ctid < (SELECT current_setting('mana_ai.load_to')::tid)
     AND partition IN (SELECT unnest(current_setting('mana_ai.load_partitions')::int[]))
) TO STDOUT WITH (FORMAT binary)`;

/** Past every block a table can have: the last range is open-ended. */
const END_OF_TABLE = '(4294967295,0)';

/**
 * The schedule of these partitions, page by page, from one consistent
 * snapshot (one repeatable-read, read-only transaction). One COPY per
 * `rangeBlocks` blocks of the table (default 32,768: 256 MB, about half a
 * second on a 2-core VM), the last one open-ended, so that no statement
 * grows with the deployment past what an operator's statement_timeout
 * allows. A caller that stops early, or a failure mid-stream, closes the
 * connection instead of returning it to the pool in the middle of a COPY.
 */
export async function* loadSchedule(pool: pg.Pool, opts: { partitions: readonly number[]; pageSize?: number; rangeBlocks?: number }): AsyncGenerator<SchedulePage> {
  if (opts.partitions.length === 0) return;
  for (const p of opts.partitions) if (!Number.isInteger(p)) throw new TypeError(`partition ${String(p)} is not an integer`);
  const rangeBlocks = opts.rangeBlocks ?? 32_768;
  const client = await pool.connect();
  let clean = false;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // read after the snapshot was taken: every row version it sees lies in these blocks (and the last range has no end)
    const { rows } = await client.query<{ blocks: string }>(
      `SELECT (pg_relation_size('mana_ai.mission_snapshots') / current_setting('block_size')::int)::text AS blocks,
              set_config('mana_ai.load_partitions', $1, true)`,
      [`{${opts.partitions.join(',')}}`],
    );
    const blocks = Number(rows[0]!.blocks);
    for (let from = 0; ; from += rangeBlocks) {
      const last = from + rangeBlocks >= blocks;
      await client.query(`SELECT set_config('mana_ai.load_from', $1, true), set_config('mana_ai.load_to', $2, true)`, [`(${from},0)`, last ? END_OF_TABLE : `(${from + rangeBlocks},0)`]);
      const reader = new ScheduleCopyReader(opts.pageSize ?? 10_000);
      // a megabyte of read-ahead: the database goes on while a page is taken in
      const stream = client.query(copyTo(COPY_SCHEDULE, { highWaterMark: 1 << 20 }));
      for await (const chunk of stream) yield* reader.push(chunk as Buffer);
      const tail = reader.end();
      if (tail) yield tail;
      if (last) break;
    }
    await client.query('COMMIT');
    clean = true;
  } finally {
    // release(true) ends the connection: one left inside a COPY or a transaction is no use to the next caller
    client.release(clean ? undefined : true);
  }
}

/**
 * Missions of these partitions due now (for POST /internal/tick), page by
 * page in due order (keyset on next_run_at, sid), so a tick never holds
 * every due mission of a large deployment in memory at once.
 */
type DueRow = [...ScheduleRow, dueText: string];

export async function* loadDueNow(pool: pg.Pool, q: { partitions: readonly number[]; pageSize?: number }): AsyncGenerator<ScheduleRow[]> {
  const pageSize = q.pageSize ?? 5_000;
  const nowMs = Date.now();
  let after: [string, number] | null = null;
  for (;;) {
    const res: pg.QueryResult<DueRow> = await pool.query<DueRow>({
      text: `SELECT sid, version, partition, mana_ai.schedulable_due_ms(state, deleted, next_run_at), agent_ref, user_ref, next_run_at::text
               FROM mana_ai.mission_snapshots
              WHERE state = 'active' AND NOT deleted AND partition = ANY($1::int[])
                AND next_run_at <= to_timestamp($2::float8 / 1000)
                AND ($3::timestamptz IS NULL OR (next_run_at, sid) > ($3::timestamptz, $4::bigint))
              ORDER BY next_run_at, sid
              LIMIT $5`,
      values: [[...q.partitions], nowMs, after?.[0] ?? null, after?.[1] ?? 0, pageSize],
      rowMode: 'array',
    });
    const rows = res.rows;
    if (rows.length > 0) yield rows.map((r) => r.slice(0, 6) as unknown as ScheduleRow);
    if (rows.length < pageSize) return;
    const last: DueRow = rows[rows.length - 1]!;
    after = [last[6], last[0]];
  }
}
