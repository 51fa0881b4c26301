// One batch of the snapshot backfill: the next `batchSize` records (agents
// first, then missions) after the stored cursor are rebuilt
// (mana_ai.rebuild_record of sql/functions/rebuild.sql)
// and the cursor moves, in one short transaction. Stopping between batches loses
// nothing; the next call resumes at the cursor.
//
// The records are found by a loose index scan over mana-sync's own index
// (table_name, record_id, created_at): each step is one index probe for the
// next record id, so a batch costs its own records, not a scan and sort of
// every `ai` row (the query before rescanned them all for every batch).
// The cursor is (table, record id); every user's record of that id is
// rebuilt in the same batch. A backfill interrupted by a release that used
// the (table, user, record) order is restarted with `--restart`.

import type pg from 'pg';
import { readSyncSchema } from './sync-schema.js';

/** mana-sync's table as recorded (quoted by Postgres), never one a search_path finds. */
async function syncTable(q: pg.Pool | pg.PoolClient): Promise<string> {
  const s = await readSyncSchema(q);
  if (!s) throw new Error("mana-sync's table is not recorded (mana_ai.sync_table): run npm run migrate first");
  return s.table;
}

export interface BackfillBatchResult {
  /** records rebuilt: missions and agents */
  missions: number;
  rows: number;
  finished: boolean;
}

export async function resetBackfill(pool: pg.Pool): Promise<void> {
  await pool.query('DELETE FROM mana_ai.backfill_progress');
}

export async function backfillBatch(pool: pg.Pool, batchSize: number): Promise<BackfillBatchResult> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO mana_ai.backfill_progress (id) VALUES (1) ON CONFLICT (id) DO NOTHING');
    const { rows: cur } = await client.query<{ last_table_name: string | null; last_user_id: string | null; last_record_id: string | null }>(
      'SELECT last_table_name, last_user_id, last_record_id FROM mana_ai.backfill_progress WHERE id = 1 FOR UPDATE',
    );
    const cursor = cur[0]!;
    const sync = await syncTable(client);
    const missions: { table_name: 'agents' | 'aiMissions'; user_id: string; record_id: string }[] = [];
    let finished = false;
    let last: { table: 'agents' | 'aiMissions'; recordId: string; userId: string } | null = null;
    const startTable = cursor.last_record_id === null ? null : (cursor.last_table_name ?? 'aiMissions');
    // agents first, then missions; the cursor is (table, record id, user id)
    tables: for (const table of ['agents', 'aiMissions'] as const) {
      if (startTable === 'aiMissions' && table === 'agents') continue;
      let resume = startTable === table ? { recordId: cursor.last_record_id!, userId: cursor.last_user_id ?? '' } : null;
      for (;;) {
        const want = batchSize - missions.length;
        if (want <= 0) break tables;
        const found = await nextRecords(client, sync, table, resume, want);
        let ids = 0;
        for (const f of found) {
          if (resume && f.record_id === resume.recordId && f.user_id === null) continue; // the cursor's record has no user left
          if (missions.length >= batchSize) break tables;
          ids += 1;
          // a record id of another app's table of the same name has no
          // 'ai' user: it moves the cursor all the same
          last = { table, recordId: f.record_id, userId: f.user_id ?? '' };
          if (f.user_id !== null) missions.push({ table_name: table, record_id: f.record_id, user_id: f.user_id });
        }
        if (ids === 0) {
          if (table === 'aiMissions') finished = true;
          continue tables; // this table is done
        }
        resume = { recordId: last!.recordId, userId: last!.userId };
      }
    }
    let rows = 0;
    for (const m of missions) {
      const kind = m.table_name === 'agents' ? 'agent' : 'mission';
      const { rows: r } = await client.query<{ n: number }>('SELECT mana_ai.rebuild_record($1, $2, $3) AS n', [kind, m.user_id, m.record_id]);
      rows += r[0]!.n;
    }
    await client.query(
      `UPDATE mana_ai.backfill_progress
          SET last_user_id = coalesce($6, last_user_id), last_record_id = coalesce($2, last_record_id),
              missions_done = missions_done + $3, rows_done = rows_done + $4, updated_at = now(),
              finished_at = CASE WHEN $5 THEN now() END,
              last_table_name = coalesce($1, last_table_name)
        WHERE id = 1`,
      [last?.table ?? null, last?.recordId ?? null, missions.length, rows, finished, last?.userId ?? null],
    );
    await client.query('COMMIT');
    return { missions: missions.length, rows, finished };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/**
 * The (record id, user id) pairs of `table` after the cursor, for up to
 * `want` record ids (each with its 'ai' users, or one row with a null user
 * when it has none), by a loose index scan over mana-sync's index
 * (table_name, record_id, created_at): one probe per record id.
 */
async function nextRecords(
  client: pg.PoolClient,
  sync: string,
  table: string,
  resume: { recordId: string; userId: string } | null,
  want: number,
): Promise<{ record_id: string; user_id: string | null }[]> {
  const { rows } = await client.query<{ record_id: string; user_id: string | null }>(
    `WITH RECURSIVE ids(record_id) AS (
       (SELECT c.record_id FROM ${sync} c
         WHERE c.table_name = $1 AND ($2::text IS NULL OR c.record_id >= $2)
         ORDER BY c.record_id LIMIT 1)
       UNION ALL
       SELECT (SELECT c.record_id FROM ${sync} c
                WHERE c.table_name = $1 AND c.record_id > ids.record_id
                ORDER BY c.record_id LIMIT 1)
         FROM ids WHERE ids.record_id IS NOT NULL),
     batch AS (SELECT record_id FROM ids WHERE record_id IS NOT NULL LIMIT $3)
     SELECT b.record_id, u.user_id
       FROM batch b
       LEFT JOIN LATERAL (SELECT DISTINCT c.user_id FROM ${sync} c
                           WHERE c.table_name = $1 AND c.record_id = b.record_id AND c.app_id = 'ai'
                             AND ($2::text IS NULL OR b.record_id <> $2 OR c.user_id > $4)) u ON true
      ORDER BY b.record_id, u.user_id`,
    [table, resume?.recordId ?? null, want + 1, resume?.userId ?? ''],
  );
  return rows;
}

export async function countMissionRows(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::bigint AS n FROM ${await syncTable(pool)} WHERE app_id = 'ai' AND table_name IN ('agents', 'aiMissions')`,
  );
  return rows[0]!.n;
}

export async function backfillProgress(pool: pg.Pool): Promise<{ rowsDone: number; missionsDone: number; finished: boolean } | null> {
  const { rows } = await pool.query('SELECT rows_done, missions_done, finished_at FROM mana_ai.backfill_progress WHERE id = 1');
  const r = rows[0];
  return r ? { rowsDone: r.rows_done, missionsDone: r.missions_done, finished: r.finished_at !== null } : null;
}
