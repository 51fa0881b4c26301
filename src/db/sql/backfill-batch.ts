// One batch of the snapshot backfill: the next `batchSize` records (agents
// first, then missions) after the stored cursor are rebuilt
// (mana_ai.rebuild_agent_snapshot of sql/012, rebuild_snapshot of sql/005)
// and the cursor moves, in one short transaction. Stopping between batches loses
// nothing; the next call resumes at the cursor.

import type pg from 'pg';

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
    const { rows: missions } = await client.query<{ table_name: 'agents' | 'aiMissions'; user_id: string; record_id: string }>(
      `SELECT DISTINCT table_name, user_id, record_id
         FROM sync_changes
        WHERE app_id = 'ai' AND table_name IN ('agents', 'aiMissions')
          AND ($1::text IS NULL OR (table_name, user_id, record_id) > ($1::text, $2::text, $3::text))
        ORDER BY table_name, user_id, record_id
        LIMIT $4`,
      [cursor.last_user_id === null ? null : (cursor.last_table_name ?? 'aiMissions'), cursor.last_user_id, cursor.last_record_id, batchSize],
    );
    let rows = 0;
    for (const m of missions) {
      const fn = m.table_name === 'agents' ? 'mana_ai.rebuild_agent_snapshot' : 'mana_ai.rebuild_snapshot';
      const { rows: r } = await client.query<{ n: number }>(`SELECT ${fn}($1, $2) AS n`, [m.user_id, m.record_id]);
      rows += r[0]!.n;
    }
    const last = missions.at(-1);
    const finished = missions.length < batchSize;
    await client.query(
      `UPDATE mana_ai.backfill_progress
          SET last_user_id = coalesce($1, last_user_id), last_record_id = coalesce($2, last_record_id),
              missions_done = missions_done + $3, rows_done = rows_done + $4, updated_at = now(),
              finished_at = CASE WHEN $5 THEN now() END,
              last_table_name = coalesce($6, last_table_name)
        WHERE id = 1`,
      [last?.user_id ?? null, last?.record_id ?? null, missions.length, rows, finished, last?.table_name ?? null],
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

export async function countMissionRows(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::bigint AS n FROM sync_changes WHERE app_id = 'ai' AND table_name IN ('agents', 'aiMissions')`,
  );
  return rows[0]!.n;
}

export async function backfillProgress(pool: pg.Pool): Promise<{ rowsDone: number; missionsDone: number; finished: boolean } | null> {
  const { rows } = await pool.query('SELECT rows_done, missions_done, finished_at FROM mana_ai.backfill_progress WHERE id = 1');
  const r = rows[0];
  return r ? { rowsDone: r.rows_done, missionsDone: r.missions_done, finished: r.finished_at !== null } : null;
}
