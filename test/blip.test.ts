// A blip of a healthy daemon's partition-lock connection does not let its
// peers run its runs a second time (issue 18): its claims name its
// generation, which its LISTEN connection still holds (sql/functions/claim.sql). The peer
// takes the partitions, finds the runs held, and the daemon that claimed
// them writes them back; the LLM is asked once per due time.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, until, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];
const releases: (() => void)[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const r of releases) r();
  for (const d of daemons) await d.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

it('the partition connection of a daemon with runs in flight is terminated: its peer finds them held, the daemon writes them, each asked once', async () => {
  const asked = new Map<string, number>();
  llm.setScript(async (req) => {
    const id = /\n(blip-\d+)\n/.exec(req.body.messages[1]!.content)?.[1];
    if (!id) return { content: planAnswer() };
    asked.set(id, (asked.get(id) ?? 0) + 1);
    if (asked.get(id) === 1) await new Promise<void>((r) => releases.push(r));
    return { content: planAnswer(`Plan für ${id}`) };
  });
  const a = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'a', MANA_AI_LLM_TIMEOUT_MS: '60000', MANA_AI_CONCURRENCY: '16' }); // all in flight at once; held answers must not time out
  daemons.push(a);
  const ids = Array.from({ length: 6 }, (_, i) => `blip-${i}`);
  const due = Date.now() + 200;
  for (const id of ids) await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: iso(due) }) });
  await eventually(() => asked.size === ids.length, 'a has every run in flight, its answers held');

  const b = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'b' });
  daemons.push(b);
  // a's partition connection goes away (a pooler restart, a cut connection): b takes every partition.
  const pid = a.reactor!.ownership.witness.pid!;
  await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
  const held = async () => Number(/mana_ai_claims_total\{outcome="held",service="mana-ai"\} (\d+)/.exec(await b.metrics.registry.metrics())?.[1] ?? 0);
  // a reconnects at once and takes its share back; b tried the runs of the partitions it took and was told held
  await eventually(async () => (await held()) >= 1, 'b tried a run of a and was told held', 20_000).catch(async (e: Error) => {
    const m = (await b.metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('mana_ai_claims_total') || l.startsWith('mana_ai_partitions_owned'));
    throw new Error(`${e.message}; b: ${m.join(' ')}; b owns ${[...b.reactor!.ownership.owned].length}`);
  });
  const claims = (await db.pool.query(`SELECT mission_id, status, claimed_by, attempts, claimed_gen FROM mana_ai.mission_runs WHERE mission_id LIKE 'blip-%' ORDER BY mission_id`)).rows;
  const gens = (await db.pool.query(`SELECT objid::int8 AS gen, count(*)::int AS holders FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 1634271234::oid GROUP BY objid`)).rows;
  assert.ok(claims.every((r) => r.status === 'running' && r.claimed_by === 'a' && r.attempts === 1), `every claim is still a's: ${JSON.stringify(claims)} gens ${JSON.stringify(gens)} a=${a.reactor!.generation}`);

  for (const r of releases.splice(0)) r();
  await until(a.reactor!, 'run-finished', () => a.events.filter((e) => e.missionId?.startsWith('blip-') && e.outcome === 'planned').length === ids.length);
  const runs = (await db.pool.query(`SELECT claimed_by, status, attempts FROM mana_ai.mission_runs WHERE mission_id LIKE 'blip-%'`)).rows;
  assert.ok(runs.every((r) => r.claimed_by === 'a' && r.status === 'done' && r.attempts === 1), JSON.stringify(runs));
  for (const id of ids) assert.equal(asked.get(id), 1, `${id} asked once`);
});
