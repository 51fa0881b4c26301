// Postgres goes away for 20 s and comes back. The daemon stays up, /health
// says 503 meanwhile, and the missions that fell due during the outage are
// planned within 5 s of the database's return, each once. This file runs
// its own embedded PostgreSQL (also under TEST_DATABASE_URL), since it
// stops the server.
// Starts first (about 26 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedServer } from '../scripts/lib/embedded-pg.js';
import { createRuntimeRole, createSyncDatabase } from '../scripts/lib/sync-database.js';
import { pushChange, webappMission } from './harness/changes.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, until, type TestDaemon } from './harness/daemon.js';

const OUTAGE_MS = 20_000;
let server: EmbeddedServer;
let llm: LlmServer;
let daemon: TestDaemon;
let pool: pg.Pool;
let url: string;

before(async () => {
  server = await startEmbeddedPostgres();
  url = await createSyncDatabase(server.url, 'outage');
  pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  llm = await startLlmServer();
  daemon = await startTestDaemon(await createRuntimeRole(url), llm.url);
});
after(async () => {
  await daemon?.stop();
  await pool?.end();
  await llm?.close();
  await server?.stop();
});

const health = () => fetch(`http://127.0.0.1:${daemon.port}/health`).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }));

it('Postgres stopped for 20 s: the daemon stays up, /health is 503, and missions due meanwhile are planned within 5 s of its return', async () => {
  const t0 = Date.now();
  const ids = Array.from({ length: 12 }, (_, i) => `out-${i}`);
  for (const [i, id] of ids.entries()) {
    // due spread over the outage window, 3 s to 14 s from now
    await pushChange(pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: new Date(t0 + 3_000 + i * 1_000).toISOString() }) });
  }
  await until(daemon.reactor!, 'scheduled', () => daemon.reactor!.wheel.size === ids.length);
  assert.equal((await health()).status, 200);

  const down = until(daemon.reactor!, 'listener', () => !daemon.reactor!.listenerConnected);
  await server.pause();
  await down;
  const during = await health();
  assert.equal(during.status, 503, 'health says the database is away');
  assert.equal(during.body['listenerConnected'], false);
  await new Promise((r) => setTimeout(r, OUTAGE_MS)); // the outage itself, not a synchronisation
  assert.equal((await health()).status, 503, 'still 503 at the end of the outage, and the process is still serving');
  assert.equal(daemon.events.length, 0, 'nothing could be planned while the database was away');

  const backAt = Date.now();
  await server.ensureRunning();
  const planned = await Promise.all(ids.map((id) => daemon.waitForRun((e) => e.missionId === id).then((e) => ({ e, at: Date.now() }))));
  const lastMs = Math.max(...planned.map((p) => p.at)) - backAt;
  for (const { e } of planned) assert.equal(e.outcome, 'planned');
  assert.ok(lastMs <= 5_000, `the last overdue mission was planned ${lastMs} ms after Postgres returned (issue: within 5 s)`);
  const runs = await pool.query(`SELECT mission_id, count(*)::int AS n FROM mana_ai.mission_runs GROUP BY mission_id`);
  assert.equal(runs.rowCount, ids.length);
  assert.ok(runs.rows.every((r) => r.n === 1), 'each due time planned once');
  await until(daemon.reactor!, 'listener', () => daemon.reactor!.listenerConnected);
  assert.equal((await health()).status, 200, 'healthy again');
  const logs = daemon.logs.join('');
  for (const step of ['LISTEN connection lost', 'partition connection lost', 'partition connection re-established', 'LISTEN connection re-established']) {
    assert.ok(logs.includes(step), `logged: ${step}`);
  }
  console.log(`# last overdue mission planned ${lastMs} ms after Postgres returned`);
});
