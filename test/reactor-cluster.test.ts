// Several daemons on one database, a killed LISTEN connection, and the
// idle daemon that makes no queries.
// Starts first (about 19 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { daemonActivity } from './harness/activity.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, until, type TestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];
before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

it('two daemons, 200 missions due in the same second: each planned exactly once', async () => {
  const a = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'daemon-a' });
  const b = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'daemon-b' });
  daemons.push(a, b);
  const due = Math.ceil((Date.now() + 2500) / 1000) * 1000;
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    for (let i = 0; i < 200; i++) {
      const userId = `cu${i % 20}`;
      await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [userId]);
      await c.query(
        `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id) VALUES ('ai','aiMissions',$1,$2,'insert',$3,'dev')`,
        [`cm${i}`, userId, JSON.stringify(webappMission({ id: `cm${i}`, nextRunAt: iso(due + (i % 900)) }))],
      );
    }
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  const planned = () => [...a.events, ...b.events].filter((e) => e.missionId?.startsWith('cm') && e.outcome === 'planned').length;
  await until([a.reactor!, b.reactor!], 'run-finished', () => planned() >= 200);
  await Promise.all([until(a.reactor!, 'idle', () => a.reactor!.runsInFlight === 0), until(b.reactor!, 'idle', () => b.reactor!.runsInFlight === 0)]);
  assert.equal(planned(), 200);
  assert.ok(a.events.some((e) => e.outcome === 'planned') && b.events.some((e) => e.outcome === 'planned'), 'both daemons worked');
  const rows = await db.pool.query(
    `SELECT record_id, count(*)::int AS n FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id LIKE 'cm%' GROUP BY record_id`,
  );
  assert.equal(rows.rows.length, 200);
  assert.ok(rows.rows.every((r) => r.n === 1), 'one write-back per mission');
  const its = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_snapshots WHERE mission_id LIKE 'cm%' AND jsonb_array_length(record -> 'iterations') = 1`);
  assert.equal(its.rows[0].n, 200, 'no duplicate iteration');
  await Promise.all([a.stop(), b.stop()]);
  daemons.length = 0;
});

it('resyncs after its LISTEN connection is killed; a mission changed during the outage runs at its new time', async () => {
  const d = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'daemon-l' });
  daemons.push(d);
  const t = Date.now();
  await pushChange(db.pool, { userId: 'lu', recordId: 'lm', op: 'insert', data: webappMission({ id: 'lm', nextRunAt: iso(t + 3_600_000), updatedAt: iso(t - 1000) }) });
  const sid = (await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'lm'`)).rows[0].sid;
  await until(d.reactor!, 'scheduled', () => d.reactor!.scheduledDue(sid) === t + 3_600_000);
  const resynced = new Promise((resolve) => d.reactor!.once('resynced', resolve));
  // Kill the listener and change the mission in the same breath: the NOTIFY is lost.
  const killed = await db.pool.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'mana-ai-listener' AND datname = current_database()`);
  assert.equal(killed.rows.length, 1);
  const newDue = Date.now() + 2500;
  await pushChange(db.pool, { userId: 'lu', recordId: 'lm', op: 'update', data: { nextRunAt: iso(newDue) }, fieldTimestamps: { nextRunAt: iso(Date.now()) } });
  const r = (await resynced) as { reason: string; missions: number };
  assert.equal(r.reason, 'reconnect');
  const ev = await d.waitForRun((e) => e.missionId === 'lm');
  assert.equal(ev.outcome, 'planned');
  assert.equal(ev.dueMs, newDue);
  const metrics = await d.metrics.registry.getSingleMetricAsString('mana_ai_listener_reconnects_total');
  assert.match(metrics, /mana_ai_listener_reconnects_total\{service="mana-ai"\} 1/);
});

it('makes no query while nothing is due (10 s window; the listener check runs every 30 s)', async () => {
  const d = daemons.at(-1)!;
  await until(d.reactor!, 'idle', () => d.reactor!.runsInFlight === 0 && d.reactor!.runsQueued === 0);
  const sample = () => daemonActivity(db.pool);
  const before = await sample();
  assert.ok(before.length >= 1);
  await new Promise((r) => setTimeout(r, 10_000)); // the observation window itself
  const afterSample = await sample();
  // connections may be closed by the pool's idle timeout, never used
  for (const s of afterSample) assert.ok(before.includes(s), `activity seen: ${s}`);
});
