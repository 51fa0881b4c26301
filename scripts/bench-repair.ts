// `npm run bench:repair`: what restoring lost iterations costs (issue 28).
//  1. time from a stale device's write (its COMMIT returned) to the repair
//     being in the snapshot (the daemon's repair row folded), p50/p99, for
//     one stale write at a time, with the real daemon process;
//  2. what a one-row mission write costs the trigger by its shape: a title
//     alone (the fast path, unchanged), the webapp's whole-array update that
//     loses nothing (compared in the fast path), and one that loses an
//     iteration (the general path and the loss row), as microseconds per
//     write from the client, interleaved.
// Prints the figures for docs/performance.md.

import { parseArgs } from 'node:util';
import pg from 'pg';
import { spawnDaemon } from '../test/harness/daemon-process.js';
import { machine, openBenchDatabase, percentile } from './lib/bench-db.js';
import { createRuntimeRole } from './lib/sync-database.js';

const { values } = parseArgs({ options: { losses: { type: 'string', default: '200' }, writes: { type: 'string', default: '2000' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(`usage: npm run bench:repair -- [--losses N] [--writes W]

Starts an embedded PostgreSQL (or BENCH_DATABASE_URL's server) and one
daemon process; N stale-device writes (default 200), one at a time, each
timed from its COMMIT to the restored iteration in the snapshot; then W
one-row mission writes of each shape (default 2,000), interleaved, timed
from the client. Prints p50/p99 and microseconds per write.`);
  process.exit(0);
}
const N = Number(values.losses);
const W = Number(values.writes);
const db = await openBenchDatabase();
const daemonUrl = await createRuntimeRole(db.url);
const daemon = await spawnDaemon('bench-repair', daemonUrl, 'http://127.0.0.1:9', { MANA_AI_LOG_LEVEL: 'info' });
const iso = (ms: number) => new Date(ms).toISOString();
const client = new pg.Client({ connectionString: db.url });
await client.connect();

async function write(c: pg.Client, user: string, id: string, op: 'insert' | 'update', data: Record<string, unknown>, ts: string): Promise<void> {
  await c.query('BEGIN');
  await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
  const fts = op === 'insert' ? {} : Object.fromEntries(Object.keys(data).map((k) => [k, ts]));
  await c.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id) VALUES ('ai', 'aiMissions', $1, $2, $3, $4, $5, 'bench')`,
    [id, user, op, JSON.stringify(data), JSON.stringify(fts)],
  );
  await c.query('COMMIT');
}
const server = (i: number) => ({ id: `srv-${i}`, startedAt: iso(Date.now() - 60_000), overallStatus: 'awaiting-review', plan: [], source: 'server', summary: 'vom Server' });
const mission = (id: string, iterations: unknown[]) => ({
  id, title: id, objective: 'bench', conceptMarkdown: '', inputs: [], iterations, createdAt: iso(Date.now() - 120_000), updatedAt: iso(Date.now() - 120_000),
  cadence: { kind: 'interval', everyMinutes: 60 }, state: 'active', nextRunAt: iso(Date.now() + 86_400_000),
});

// 1. stale write -> repaired
for (let i = 0; i < N; i++) await write(client, `bench-user-${i % 17}`, `rep-${i}`, 'insert', mission(`rep-${i}`, [server(i)]), iso(Date.now()));
const lags: number[] = [];
for (let i = 0; i < N; i++) {
  const user = `bench-user-${i % 17}`;
  await write(client, user, `rep-${i}`, 'update', { title: `stale ${i}`, inputs: [], iterations: [], updatedAt: iso(Date.now()) }, iso(Date.now()));
  const t0 = performance.now();
  for (;;) {
    const { rows } = await client.query(`SELECT record -> 'iterations' @> $3::jsonb AS back FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`, [user, `rep-${i}`, JSON.stringify([{ id: `srv-${i}` }])]);
    if (rows[0]?.back) break;
    if (performance.now() - t0 > 30_000) throw new Error(`rep-${i} was not repaired within 30 s`);
  }
  lags.push(performance.now() - t0);
}
const { rows: settled } = await client.query(`SELECT count(*) FILTER (WHERE outcome = 'restored')::int AS restored, count(*)::int AS losses FROM mana_ai.lost_iterations`);

// 2. one-row writes by shape, interleaved
const SHAPES = ['title', 'whole-array', 'losing'] as const;
for (let i = 0; i < 3 * 50; i++) await write(client, 'bench-w', `w-${i}`, 'insert', mission(`w-${i}`, [server(i)]), iso(Date.now()));
const times: Record<(typeof SHAPES)[number], number[]> = { title: [], 'whole-array': [], losing: [] };
const wc = new pg.Client({ connectionString: db.url });
await wc.connect();
for (let k = 0; k < W; k++) {
  for (const [s, shape] of SHAPES.entries()) {
    const id = `w-${s * 50 + (k % 50)}`;
    const ts = iso(Date.now());
    const its = shape === 'losing' ? [] : [server(s * 50 + (k % 50))];
    const data = shape === 'title' ? { title: `t${k}` } : { title: `t${k}`, inputs: [], iterations: its, updatedAt: ts };
    const t0 = performance.now();
    await write(wc, 'bench-w', id, 'update', data, ts);
    times[shape].push((performance.now() - t0) * 1000);
  }
}
await wc.end();
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

console.log(`bench:repair: ${machine()}`);
console.log(`stale write -> iteration back in the snapshot, ${N} losses one at a time: p50 ${percentile(lags, 50).toFixed(1)} ms, p99 ${percentile(lags, 99).toFixed(1)} ms, max ${Math.max(...lags).toFixed(1)} ms (${settled[0].restored} of ${settled[0].losses} losses restored by a repair row)`);
for (const shape of SHAPES) {
  console.log(`one-row mission write, ${shape.padEnd(11)}: mean ${mean(times[shape]).toFixed(0)} µs, p50 ${percentile(times[shape], 50).toFixed(0)} µs, p99 ${percentile(times[shape], 99).toFixed(0)} µs (${W} writes)`);
}
await client.end();
daemon.kill('SIGTERM');
await daemon.exited;
await db.close();
