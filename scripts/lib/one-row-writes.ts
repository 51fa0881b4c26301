// A mission write as mana-sync makes it, one row per transaction (BEGIN,
// set_config, INSERT, COMMIT) from this process: the unit bench-trigger's
// single-row ratio and bench-trigger-variants time. An edit of the title of
// one of 500 existing records ('m-0' … 'm-499') of 'bench-user'. Writes to
// a bench database only.

import type pg from 'pg';

/** Writes n one-row transactions into (appId, tableName); returns µs per write. */
export async function oneRowWrites(client: pg.PoolClient, appId: string, tableName: string, n: number, tag: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.current_user_id', 'bench-user', true)`);
    await client.query(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
       VALUES ($1, $2, $3, 'bench-user', 'update', $4::jsonb, $5::jsonb, 'bench-device')`,
      [appId, tableName, `m-${i % 500}`, JSON.stringify({ title: `${tag} ${i}` }), JSON.stringify({ title: new Date().toISOString() })],
    );
    await client.query('COMMIT');
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}
