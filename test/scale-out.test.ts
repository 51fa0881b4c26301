// Several daemon processes share the missions through partition locks:
// three split 64 partitions evenly; one is SIGKILLed and the other two take
// its partitions and run what became due meanwhile; a fourth joins and gets
// its share; no mission runs twice at any point.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { PARTITION_NS } from '../src/db/sql/partition-locks.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { spawnDaemon, type DaemonProcess } from './harness/daemon-process.js';

let db: TestDb;
let llm: LlmServer;
const daemons: DaemonProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const d of daemons) d.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.exited));
  await llm?.close();
  await db?.drop();
});

async function shares(): Promise<number[]> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::int8 = $1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      GROUP BY pid`,
    [PARTITION_NS],
  );
  return rows.map((r) => r.n).sort((a, b) => a - b);
}

/** Re-checks `check` on every log line of any daemon, until it holds. */
function whenever(check: () => Promise<boolean>): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const test = async () => {
      if (done || !(await check())) return;
      done = true;
      for (const d of daemons) d.events.off('line', test);
      resolve();
    };
    for (const d of daemons) d.events.on('line', test);
    void test();
  });
}

async function insertMissions(prefix: string, n: number, dueMs: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    ids.push(id);
    await pushChange(db.pool, { userId: `user-${prefix}-${i}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: new Date(dueMs).toISOString() }) });
  }
  return ids;
}

const doneCount = async (prefix: string) =>
  (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id LIKE $1 AND status = 'done'`, [`${prefix}-%`])).rows[0]!.n;

async function assertOncePerMission(prefix: string, n: number): Promise<void> {
  const runs = await db.pool.query(`SELECT mission_id, count(*)::int AS n, max(attempts) AS attempts FROM mana_ai.mission_runs WHERE mission_id LIKE $1 GROUP BY mission_id`, [`${prefix}-%`]);
  assert.equal(runs.rowCount, n, 'every mission has its run');
  assert.ok(runs.rows.every((r) => r.n === 1), 'one run per mission and due time');
  const written = await db.pool.query(
    `SELECT record_id, count(*)::int AS n FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id LIKE $1 GROUP BY record_id`, [`${prefix}-%`]);
  assert.equal(written.rowCount, n);
  assert.ok(written.rows.every((r) => r.n === 1), 'one iteration written per mission');
  const asked = llm.requests.filter((r) => r.body.messages[1]!.content.includes(`\n${prefix}-`)).length;
  assert.equal(asked, n, 'the LLM was asked once per mission');
}

it('three daemons share 64 partitions; one SIGKILLed, two take over and run what became due; a fourth joins; nothing runs twice', async () => {
  daemons.push(...(await Promise.all(['d1', 'd2', 'd3'].map((n) => spawnDaemon(n, db.daemonUrl, llm.url)))));
  await whenever(async () => JSON.stringify(await shares()) === '[21,21,22]');

  // Freeze d2 (its locks stay held, it cannot run anything), make 90 missions
  // due; the others plan theirs; then kill d2: its missions are overdue.
  const d2 = daemons[1]!;
  const holders = (await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'mana-ai-partitions' AND datname = current_database()`)).rows;
  assert.equal(holders.length, 3, 'each daemon holds one partition connection');
  d2.kill('SIGSTOP');
  const ids = await insertMissions('a', 90, Date.now() + 300);
  const { rows: parts } = await db.pool.query<{ partition: number }>(`SELECT DISTINCT partition FROM mana_ai.mission_snapshots WHERE mission_id LIKE 'a-%'`);
  assert.ok(parts.length > 40, 'the missions spread over most partitions');
  // The two running daemons plan the missions of their partitions.
  await whenever(async () => (await doneCount('a')) > 0 && daemons.filter((d) => d !== d2).every((d) => d.lines.some((l) => l.msg === 'run written back')));
  const killedAt = Date.now();
  d2.kill('SIGKILL');
  await d2.exited;
  daemons.splice(1, 1);
  await whenever(async () => JSON.stringify(await shares()) === '[32,32]');
  const takeoverMs = Date.now() - killedAt;
  assert.ok(takeoverMs < 10_000, `survivors own every partition ${takeoverMs} ms after the kill (issue: within 10 s)`);
  await whenever(async () => (await doneCount('a')) === ids.length);
  await assertOncePerMission('a', ids.length);
  assert.ok(daemons.some((d) => d.lines.some((l) => l.msg === 'a peer daemon is gone; taking over its share')), 'the ring watcher noticed');

  // A fourth daemon joins while more missions fall due.
  const d4 = await spawnDaemon('d4', db.daemonUrl, llm.url);
  daemons.push(d4);
  const more = await insertMissions('b', 90, Date.now() + 200);
  await whenever(async () => JSON.stringify(await shares()) === '[21,21,22]');
  await whenever(async () => (await doneCount('b')) === more.length);
  await assertOncePerMission('b', more.length);
  assert.ok(d4.lines.some((l) => l.msg === 'partitions rebalanced' && Number(l['owned']) >= 21), 'the newcomer took its share');
  console.log(`# takeover after SIGKILL: ${takeoverMs} ms`);
});
