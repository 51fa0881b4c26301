// Prints what the snapshot trigger costs mana-sync's inserts:
//  * non-mission rows with the trigger installed vs disabled (ratio; the
//    WHEN clause should make it ~1.0; target >= 0.97);
//  * a mission row vs a plain insert, one row per transaction as mana-sync
//    writes: statements prepared once per connection, as its driver (pgx)
//    sends them (target <= 1.5x, issue 20); and the same with every
//    statement parsed and planned per write, the measure of earlier runs
//    (scripts/lib/one-row-writes.ts says why both);
//  * a bulk import: --bulk-rows new missions (default 1,000,000) in
//    statements of 5,000 rows, one transaction each (target >= 3,000
//    rows/s, issue 20), and where the time goes per row
//    (pg_stat_user_functions with track_functions = 'all', on 20,000 rows).
// Rounds alternate so both sides see the same machine state; medians.
// Usage: npm run bench:trigger [-- --rows N --rounds R --bulk-rows N]

import { parseArgs } from 'node:util';
import type pg from 'pg';
import { machine, median, openBenchDatabase } from './lib/bench-db.js';
import { oneRowWrites, seedBenchMissions, type WriteMode } from './lib/one-row-writes.js';

// The figures before issue 20's changes, on the same machine
// (docs/performance.md), printed beside today's so a run reads on its own.
const BEFORE = {
  bulk: '886 s, 1,130 rows/s (the issue\'s run of the release before)',
  singleUnnamed: '2.61x (726 vs 279 µs); 2.16x and 2.98x in two runs on 2026-12-01 (release before issue 20, 3bb9616)',
  singlePgx: '2.59x (939 vs 362 µs) and 2.02x (717 vs 356 µs) in two runs on 2026-12-01 (release before issue 20, 3bb9616)',
};

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '7' },
    'bulk-rows': { type: 'string', default: '1000000' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`usage: npm run bench:trigger -- [--rows N] [--rounds R] [--bulk-rows N]

Prints what the snapshot trigger costs mana-sync's inserts (docs/performance.md).
Starts an embedded PostgreSQL, or creates a scratch database on
BENCH_DATABASE_URL's server (dropped at the end).
  --rows N     rows per round (default 20000)
  --rounds R   alternating rounds, medians reported (default 7)
  --bulk-rows N  new missions for the bulk import, in 5,000-row statements
               (default 1000000; 0 skips it)`);
  process.exit(0);
}
const ROWS = Number(values.rows);
const ROUNDS = Number(values.rounds);
const BULK_ROWS = Number(values['bulk-rows']);
const BULK_BATCH = 5_000;

const db = await openBenchDatabase();

async function timed(client: pg.PoolClient, sqlText: string, params: unknown[]): Promise<number> {
  await client.query('BEGIN');
  await client.query(`SELECT set_config('app.current_user_id', 'bench-user', true)`);
  const t0 = process.hrtime.bigint();
  await client.query(sqlText, params);
  const t1 = process.hrtime.bigint();
  await client.query('COMMIT');
  return Number(t1 - t0) / 1e6;
}

// Rows like a device push: a note insert with a few fields.
const OTHER_APP = `
  INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
  SELECT 'notes', 'notes', 'n-' || $1::text || '-' || g, 'bench-user', 'insert',
         jsonb_build_object('title', 'note ' || g, 'content', 'enc:1:abc.def', 'updatedAt', '2026-01-01T00:00:00.000Z'),
         '{}'::jsonb, 'bench-device'
    FROM generate_series(1, $2::int) g`;
// Mission updates: a device edits the title of an existing mission.
const MISSION_UPDATE = `
  INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
  SELECT $3::text, $4::text, 'm-' || (g % 500), 'bench-user', 'update',
         jsonb_build_object('title', 'mission ' || g || ' ' || $1::text),
         jsonb_build_object('title', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
         'bench-device'
    FROM generate_series(1, $2::int) g`;

const client = await db.pool.connect();
try {
  await seedBenchMissions(client);
  // warm-up
  await timed(client, OTHER_APP, ['w', 2000]);
  await timed(client, MISSION_UPDATE, ['w', 2000, 'ai', 'aiMissions']);

  const withTrigger: number[] = [];
  const withoutTrigger: number[] = [];
  const missionRows: number[] = [];
  const plainSameShape: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    withTrigger.push(await timed(client, OTHER_APP, [`a${r}`, ROWS]));
    await client.query('ALTER TABLE sync_changes DISABLE TRIGGER mana_ai_mission_snapshot');
    withoutTrigger.push(await timed(client, OTHER_APP, [`b${r}`, ROWS]));
    // the same statement shape as a mission update, but for another table: a plain insert
    plainSameShape.push(await timed(client, MISSION_UPDATE, [`c${r}`, ROWS / 4, 'ai', 'notAMission']));
    await client.query('ALTER TABLE sync_changes ENABLE TRIGGER mana_ai_mission_snapshot');
    missionRows.push(await timed(client, MISSION_UPDATE, [`d${r}`, ROWS / 4, 'ai', 'aiMissions']));
  }
  // As mana-sync writes: one row per transaction (BEGIN, set_config, INSERT, COMMIT).
  const E2E = Math.min(2000, ROWS / 10);
  const perTransaction = (appId: string, tableName: string, tag: string, mode: WriteMode) => oneRowWrites(client, appId, tableName, E2E, tag, mode);
  const e2e = { pgx: { plain: [] as number[], mission: [] as number[] }, unnamed: { plain: [] as number[], mission: [] as number[] } };
  for (let r = 0; r < 3; r++) {
    for (const mode of ['pgx', 'unnamed'] as const) {
      e2e[mode].plain.push(await perTransaction('notes', 'notes', `p${r}`, mode));
      e2e[mode].mission.push(await perTransaction('ai', 'aiMissions', `q${r}`, mode));
    }
  }
  // The same writes without the client's round trips: a procedure that
  // commits after every row, so only the server's work is timed.
  await client.query(`CREATE OR REPLACE PROCEDURE pg_temp.bench_single(p_app text, p_table text, n int) LANGUAGE plpgsql AS $$
    BEGIN
      FOR i IN 1..n LOOP
        PERFORM set_config('app.current_user_id', 'bench-user', true);
        INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id)
        VALUES (p_app, p_table, 'm-' || (i % 500), 'bench-user', 'update', jsonb_build_object('title', 't' || i || clock_timestamp()), 'bench-device');
        COMMIT;
      END LOOP;
    END $$`);
  const serverSide = async (app: string, table: string) => {
    const t0 = process.hrtime.bigint();
    await client.query('CALL pg_temp.bench_single($1, $2, $3)', [app, table, E2E]);
    return Number(process.hrtime.bigint() - t0) / 1e3 / E2E;
  };
  const srvPlain: number[] = [];
  const srvMission: number[] = [];
  for (let r = 0; r < 3; r++) {
    srvPlain.push(await serverSide('notes', 'notes'));
    srvMission.push(await serverSide('ai', 'aiMissions'));
  }
  const perRow = (ms: number, n: number) => (ms * 1000) / n;
  const withUs = perRow(median(withTrigger), ROWS);
  const withoutUs = perRow(median(withoutTrigger), ROWS);
  const missionUs = perRow(median(missionRows), ROWS / 4);
  const plainUs = perRow(median(plainSameShape), ROWS / 4);
  console.log(`bench-trigger: ${ROWS} rows per round, ${ROUNDS} rounds, medians; ${machine()}; embedded PostgreSQL ${(await client.query('SHOW server_version')).rows[0].server_version}`);
  console.log(`  non-mission insert, trigger installed : ${withUs.toFixed(2)} µs/row (${(1e6 / withUs).toFixed(0)} rows/s)`);
  console.log(`  non-mission insert, trigger disabled  : ${withoutUs.toFixed(2)} µs/row (${(1e6 / withoutUs).toFixed(0)} rows/s)`);
  console.log(`  throughput ratio with/without         : ${(withoutUs / withUs).toFixed(3)}  (target >= 0.97)`);
  for (const mode of ['pgx', 'unnamed'] as const) {
    const e2eP = median(e2e[mode].plain);
    const e2eM = median(e2e[mode].mission);
    const how = mode === 'pgx'
      ? 'mission write, one row per transaction, statements prepared once per connection as mana-sync (pgx) sends them'
      : 'the same, every statement parsed and planned per write (the measure before 2026-12-01)';
    console.log(`  ${how}: ${e2eM.toFixed(0)} µs  vs plain write ${e2eP.toFixed(0)} µs  -> ${(e2eM / e2eP).toFixed(2)}x${mode === 'pgx' ? '  (target <= 1.5x)' : ''}  [before: ${mode === 'pgx' ? BEFORE.singlePgx : BEFORE.singleUnnamed}]`);
  }
  console.log(`  the same, server side only (a procedure committing per row): ${median(srvMission).toFixed(0)} µs vs ${median(srvPlain).toFixed(0)} µs -> +${(median(srvMission) - median(srvPlain)).toFixed(0)} µs a mission write`);
  console.log(`  server-side only, bulk INSERT..SELECT : mission row ${missionUs.toFixed(1)} µs vs plain row ${plainUs.toFixed(1)} µs -> ${(missionUs / plainUs).toFixed(1)}x (fold + snapshot upsert in PL/pgSQL)`);
  if (BULK_ROWS > 0) await bulkImport(client);
} finally {
  client.release();
  await db.close();
}

/** New missions of 1,000 users, as a backfill or data migration writes them. */
async function bulkImport(c: pg.PoolClient): Promise<void> {
  const stmt = `
    INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
    SELECT 'ai', 'aiMissions', 'bulk-' || $1::int || '-' || g, 'bulk-user-' || (g % 1000), 'insert',
           jsonb_build_object('title', 'mission ' || g, 'objective', 'keep the inbox small', 'state', 'active',
                              'nextRunAt', to_char(timestamptz '2030-01-01 09:00Z' + g * interval '1 minute', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                              'cadence', jsonb_build_object('kind', 'daily', 'atHour', 9, 'atMinute', 0),
                              'iterations', '[]'::jsonb, 'createdAt', '2026-01-01T00:00:00.000Z', 'updatedAt', '2026-01-01T00:00:00.000Z'),
           '{}'::jsonb, 'bench-import'
      FROM generate_series(1, $2::int) g`;
  const batch = async (i: number, n: number) => {
    await c.query('BEGIN');
    await c.query(stmt, [i, n]);
    await c.query('COMMIT');
  };
  // Where the time goes per row: the first 20,000 rows with every function counted.
  await c.query(`SET track_functions = 'all'`);
  await c.query('SELECT pg_stat_reset()');
  const profiled = Math.min(20_000, BULK_ROWS);
  for (let i = 0; i * BULK_BATCH < profiled; i++) await batch(-1 - i, Math.min(BULK_BATCH, profiled - i * BULK_BATCH));
  await c.query('SELECT pg_stat_force_next_flush()');
  const { rows: prof } = await c.query<{ funcname: string; calls: string; total: number; self: number }>(`
    SELECT funcname, calls, total_time AS total, self_time AS self
      FROM pg_stat_user_functions WHERE schemaname = 'mana_ai' ORDER BY self_time DESC`);
  await c.query(`SET track_functions = 'none'`);
  console.log(`  where a bulk mission row's time goes (${profiled} rows, pg_stat_user_functions, µs per row):`);
  for (const r of prof) console.log(`    ${r.funcname.padEnd(20)} calls ${String(r.calls).padStart(6)}  self ${((r.self * 1000) / profiled).toFixed(1).padStart(6)}  total ${((r.total * 1000) / profiled).toFixed(1).padStart(6)}`);
  await c.query(`TRUNCATE mana_ai.mission_snapshots`);

  const t0 = process.hrtime.bigint();
  let last = t0;
  for (let i = 0; i * BULK_BATCH < BULK_ROWS; i++) {
    await batch(i, Math.min(BULK_BATCH, BULK_ROWS - i * BULK_BATCH));
    if ((i + 1) % 40 === 0) {
      const now = process.hrtime.bigint();
      console.log(`    ${(i + 1) * BULK_BATCH} rows, last 200,000 at ${((200_000 * 1e9) / Number(now - last)).toFixed(0)} rows/s`);
      last = now;
    }
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const { rows } = await c.query(`SELECT count(*)::int AS n, (SELECT count(*)::int FROM mana_ai.snapshot_errors) AS errors FROM mana_ai.mission_snapshots`);
  console.log(`  bulk import, ${BULK_ROWS} new missions in ${BULK_BATCH}-row statements: ${s.toFixed(1)} s -> ${(BULK_ROWS / s).toFixed(0)} rows/s  (target >= 3,000); ${rows[0].n} snapshots, ${rows[0].errors} fold errors  [before: ${BEFORE.bulk}]`);
}
