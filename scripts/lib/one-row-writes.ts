// A mission write as mana-sync makes it, one row per transaction (BEGIN,
// set_config, INSERT, COMMIT) from this process: the unit bench-trigger's
// single-row ratio and bench-trigger-variants time. An edit of the title of
// one of 500 existing records ('m-0' … 'm-499') of 'bench-user'. Writes to
// a bench database only.
//
// Two ways of sending the statements:
// - 'pgx', the default: as mana-sync's driver sends them. mana-sync is Go
//   on pgx v5 (pgxpool with its default configuration); pgx's default
//   query mode, QueryExecModeCacheStatement, prepares every statement that
//   has arguments once per connection under a name and then only binds and
//   executes it, and sends statements without arguments (BEGIN, COMMIT) as
//   simple queries. So set_config($1) and the INSERT are named statements
//   here, parsed and planned once per connection.
// - 'unnamed': every statement parsed and planned again for each write
//   (node-postgres's default), the way this loop sent them until
//   2026-12-01; kept so its figures stay comparable with earlier ones.

import type pg from 'pg';

export type WriteMode = 'pgx' | 'unnamed';

const INSERT = `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
       VALUES ($1, $2, $3, 'bench-user', 'update', $4::jsonb, $5::jsonb, 'bench-device')`;
// pgx names a cached statement after a digest of its text; one name per text is what matters.
const STATEMENTS = {
  pgx: {
    setUser: { name: 'bench_set_user', text: `SELECT set_config('app.current_user_id', $1, true)`, values: ['bench-user'] },
    insert: { name: 'bench_insert', text: INSERT },
  },
  // exactly as this loop sent them before 2026-12-01 (a query without values goes as a simple query)
  unnamed: {
    setUser: { text: `SELECT set_config('app.current_user_id', 'bench-user', true)` },
    insert: { text: INSERT },
  },
};

/** The 500 missions ('m-0' … 'm-499' of 'bench-user', due 2030) the writes edit; their snapshots, through the trigger. */
export async function seedBenchMissions(client: pg.PoolClient): Promise<void> {
  await client.query(`
    INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
    SELECT 'ai', 'aiMissions', 'm-' || g, 'bench-user', 'insert',
           jsonb_build_object('title', 'm', 'state', 'active', 'nextRunAt', '2030-01-01T00:00:00.000Z',
                              'cadence', jsonb_build_object('kind', 'daily', 'atHour', 9, 'atMinute', 0),
                              'iterations', '[]'::jsonb, 'updatedAt', '2026-01-01T00:00:00.000Z'),
           '{}'::jsonb, 'bench-device'
      FROM generate_series(0, 499) g`);
}

/** Writes n one-row transactions into (appId, tableName); returns µs per write. */
export async function oneRowWrites(client: pg.PoolClient, appId: string, tableName: string, n: number, tag: string, mode: WriteMode = 'pgx'): Promise<number> {
  const { setUser, insert } = STATEMENTS[mode];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await client.query('BEGIN');
    await client.query(setUser);
    await client.query({
      ...insert,
      values: [appId, tableName, `m-${i % 500}`, JSON.stringify({ title: `${tag} ${i}` }), JSON.stringify({ title: new Date().toISOString() })],
    });
    await client.query('COMMIT');
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / n;
}
