// The burst's batching floor (issue 30; bench:vs-graphile, bench:burst-cpu):
// the work CONTRACT.md sets per unit of a recurring mission (its row in,
// one request to the LLM, the iteration's row with the next due time back
// through the snapshot trigger) with everything else batched as far as it
// goes and nothing of a runner's own: no claim, no charge, no checks. Its
// missions are active and due a day ahead, so the trigger schedules and
// announces them as it does ours and the idle daemon never runs them. The
// burst statement also sends one notification; on it one statement reads
// every unit with its record; four requests at a time; whatever answers
// are in when the previous write-back returns go back in one statement,
// each row scoped to its user as the runtime role. What any runner doing
// that work must cost on this machine, whatever its queue. A bench's
// yardstick: it must never be mistaken for a runner (it keeps no
// guarantee).

import pg from 'pg';
import { BENCH_WRITE_BACK_BATCH_SQL, assertWrittenBack, benchWriteBackRow, floorDueIso, insertBurstSql } from './burst.js';

export interface BatchingFloor {
  /** `n` units `prefix`1 … `prefix`n committed in one statement, until every iteration is written back; units per second. */
  burst(prefix: string, n: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * `superUrl`: the bench's superuser (it installs the batch function and
 * commits the units); `runtime`: the runtime role's pool, which reads and
 * writes back as the daemon does; `post`: sends bench mission `id`'s prompt
 * and reads the answer.
 */
export async function startBatchingFloor(superUrl: string, runtime: pg.Pool, post: (id: string) => Promise<void>, concurrency = 4): Promise<BatchingFloor> {
  const admin = new pg.Client({ connectionString: superUrl });
  await admin.connect();
  await admin.query(BENCH_WRITE_BACK_BATCH_SQL);
  const listen = new pg.Client({ connectionString: superUrl });
  await listen.connect();
  await listen.query('LISTEN bench_batch');
  let onNotify: ((prefix: string) => void) | null = null;
  listen.on('notification', (n) => onNotify?.(n.payload ?? ''));

  async function burst(prefix: string, n: number): Promise<number> {
    const notified = new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('batching floor: no notification in 30 s')), 30_000);
      onNotify = (p) => {
        if (p !== prefix) return;
        clearTimeout(t);
        resolve(p);
      };
    });
    const t0 = performance.now();
    await admin.query(
      `WITH m AS (${insertBurstSql()} RETURNING 1)
       SELECT pg_notify('bench_batch', $1) FROM (SELECT count(*) FROM m) c`,
      [prefix, floorDueIso(), n],
    );
    await notified;
    const { rows } = await runtime.query<{ mission_id: string; user_id: string; record: unknown }>(
      `SELECT mission_id, user_id, record FROM mana_ai.mission_snapshots WHERE mission_id LIKE $1 || '%'`, [prefix]);
    if (rows.length !== n) throw new Error(`batching floor: read ${rows.length} of ${n} units`);
    let next = 0;
    let written = 0;
    let answered: Record<string, unknown>[] = [];
    let wake: (() => void) | null = null;
    const requests = Array.from({ length: concurrency }, async () => {
      while (next < rows.length) {
        const unit = rows[next++]!;
        await post(unit.mission_id);
        answered.push(benchWriteBackRow(unit.mission_id, unit.user_id));
        wake?.();
      }
    });
    const writer = (async () => {
      while (written < rows.length) {
        if (answered.length === 0) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        const batch = answered;
        answered = [];
        await runtime.query({ name: 'bench-write-back-batch', text: 'SELECT public.bench_write_back_batch($1)', values: [JSON.stringify(batch)] });
        written += batch.length;
      }
    })();
    await Promise.all([...requests, writer]);
    const rate = n / ((performance.now() - t0) / 1000);
    await assertWrittenBack(admin, prefix, n, 'batching floor');
    return rate;
  }

  return {
    burst,
    close: async () => {
      await listen.end();
      await admin.end();
    },
  };
}
