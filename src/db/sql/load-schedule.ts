// Loads what the reactor schedules: every active, non-deleted mission with a
// next run, as (sid, version, partition, due ms, agent ref, user ref).
//
// Keyset pages by sid, each page packed by Postgres into one bytea of
// fixed-size binary records (44 bytes a mission) and read in place: a
// million missions arrive as 20 buffers, not as a million row arrays of
// boxed numbers for the garbage collector, so the load's peak memory is
// two pages (the next one is read while the caller takes in this one) and
// the load itself is a few seconds. Ids and records stay in the database.

import type pg from 'pg';

/** [sid, version, partition, dueMs, agentRef | null, userRef] (POST /internal/tick's small answers). */
export type ScheduleRow = [sid: number, version: number, partition: number, dueMs: number, agentRef: number | null, userRef: number];

/** Bytes per packed mission: sid 8, version 8, partition 4, due ms 8, agent ref 8 (-1 = none), user ref 8. */
const RECORD = 44;

/** One page of the schedule, read in place. */
export class SchedulePage {
  readonly length: number;
  // A DataView reads an int32 in one step; Buffer's readInt32BE assembles
  // it from four byte reads with checks, and a load reads six values a
  // mission, a million missions at a cold start.
  private readonly view: DataView;
  constructor(buf: Buffer) {
    this.length = buf.length / RECORD;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  // int8 as two int32 halves (big-endian, as int8send writes them): exact for every value in ±2^53, no BigInt per value
  private int8(at: number): number {
    return this.view.getInt32(at) * 4_294_967_296 + this.view.getUint32(at + 4);
  }
  sid(i: number): number {
    return this.int8(i * RECORD);
  }
  version(i: number): number {
    return this.int8(i * RECORD + 8);
  }
  partition(i: number): number {
    return this.view.getInt32(i * RECORD + 16);
  }
  dueMs(i: number): number {
    return this.int8(i * RECORD + 20);
  }
  /** -1 = no agent */
  agentRef(i: number): number {
    return this.int8(i * RECORD + 28);
  }
  userRef(i: number): number {
    return this.int8(i * RECORD + 36);
  }
  /** The page's largest sid, where the next page starts (records come in any order). */
  lastSid(): number {
    let max = -1;
    for (let i = 0; i < this.length; i++) max = Math.max(max, this.sid(i));
    return max;
  }
}

// The due time is mana_ai.schedulable_due_ms() written out: the WHERE
// clause already is its condition, and the function is never inlined
// (PL/pgSQL now; its SQL body was not either, extract() is only STABLE):
// called per row it made the query four times slower (1.3 s instead of
// 0.3 s per million rows, measured with the SQL body).
async function readPage(pool: pg.Pool, after: number, upTo: number, pageSize: number, partitions: readonly number[] | null): Promise<SchedulePage> {
  const { rows } = await pool.query<{ packed: Buffer | null }>({
    text: `SELECT string_agg(int8send(sid) || int8send(version) || int4send(partition) || int8send(due_ms)
                             || int8send(coalesce(agent_ref, -1)) || int8send(user_ref), ''::bytea) AS packed
             FROM (SELECT sid, version, partition, floor(extract(epoch FROM next_run_at) * 1000)::bigint AS due_ms, agent_ref, user_ref
                     FROM mana_ai.mission_snapshots
                    WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL
                      AND sid > $1 AND sid <= $4 AND ($3::int[] IS NULL OR partition = ANY($3::int[]))
                    ORDER BY sid
                    LIMIT $2) page`,
    values: [after, pageSize, partitions ? [...partitions] : null, upTo],
  });
  // pg's bytea parser decodes the hex text into a Buffer. (pg's `binary`
  // result mode would halve the transfer, but pg-protocol decodes every
  // field as UTF-8 text first, which garbles arbitrary bytes.)
  return new SchedulePage(rows[0]?.packed ?? Buffer.alloc(0));
}

/** The pages of one range of sids, (after, upTo], reading the next page while the caller takes this one. */
async function* pagesOf(pool: pg.Pool, after: number, upTo: number, pageSize: number, partitions: readonly number[] | null): AsyncGenerator<SchedulePage> {
  let page = await readPage(pool, after, upTo, pageSize, partitions);
  for (;;) {
    // read ahead: the database works on the next page while the caller takes this one
    const next = page.length === pageSize ? readPage(pool, page.lastSid(), upTo, pageSize, partitions) : null;
    // a failed read-ahead is reported by the await below, not as an unhandled rejection
    next?.catch(() => {});
    if (page.length > 0) yield page;
    if (!next) return;
    page = await next;
  }
}

/**
 * The schedule of these partitions (all when omitted), page by page. The
 * sids are split into `streams` ranges read at the same time on their own
 * connections (issue 30: a million missions scheduled in 3 s), their pages
 * handed over as they arrive; each stream keeps at most two pages.
 */
export async function* loadSchedule(pool: pg.Pool, opts: { pageSize?: number; partitions?: readonly number[]; streams?: number } = {}): AsyncGenerator<SchedulePage> {
  const pageSize = opts.pageSize ?? 10_000;
  const partitions = opts.partitions ?? null;
  const { rows } = await pool.query<{ lo: string | null; hi: string | null }>('SELECT min(sid) AS lo, max(sid) AS hi FROM mana_ai.mission_snapshots');
  if (rows[0]?.hi == null) return;
  const lo = Number(rows[0].lo) - 1;
  const hi = Number(rows[0].hi);
  const streams = Math.max(1, Math.min(opts.streams ?? 2, Math.ceil((hi - lo) / pageSize)));
  const step = Math.ceil((hi - lo) / streams);
  const gens = Array.from({ length: streams }, (_, k) => pagesOf(pool, lo + k * step, k === streams - 1 ? hi : lo + (k + 1) * step, pageSize, partitions));
  type Next = { k: number; r: IteratorResult<SchedulePage> } | { k: number; error: unknown };
  const pending = new Map<number, Promise<Next>>();
  // a stream's failure is an answer, never a rejection left unobserved once the others are ended
  const pull = (k: number) => pending.set(k, gens[k]!.next().then((r): Next => ({ k, r }), (error: unknown): Next => ({ k, error })));
  try {
    gens.forEach((_, k) => pull(k));
    while (pending.size > 0) {
      const next = await Promise.race(pending.values());
      if (!('r' in next)) throw next.error;
      const { k, r } = next;
      if (r.done) {
        pending.delete(k);
        continue;
      }
      pull(k);
      yield r.value;
    }
  } finally {
    // a caller that stops early (or a failed stream) ends the others: no read left running
    for (const g of gens) await g.return(undefined).catch(() => {});
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
