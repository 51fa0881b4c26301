// Dead peers, with real processes and the default lease (issue 11):
// a daemon SIGKILLed with runs in flight has them re-claimed by its peer
// within 10 s (the claim's witness, its session, is gone; the 10-minute
// lease is not waited for), while the peer's own runs in flight are never
// taken; and a daemon whose watch connection was killed watches again, so a
// later SIGKILL of the watched peer still moves that peer's partitions and
// its missions are planned.
// Starts first (about 17 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { MEMBER_NS, PARTITION_NS } from '../src/db/sql/partition-locks.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { spawnDaemon, type DaemonProcess } from './harness/daemon-process.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
const daemons: DaemonProcess[] = [];
const releases: (() => void)[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const r of releases) r();
  for (const d of daemons) d.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.exited));
  await llm?.close();
  await db?.drop();
});

// Enough slots that every held run is in flight, none queued behind them.
const spawn = async (name: string) => {
  const d = await spawnDaemon(name, db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '16' });
  daemons.push(d);
  return d;
};
const iso = (ms: number) => new Date(ms).toISOString();

it('a daemon SIGKILLed with runs in flight: its peer re-claims them within 10 s with the default lease, and never takes the peer’s own', async (t) => {
  // The first request for each mission is held (a slow LLM); a second one answers at once.
  const asked = new Map<string, number>();
  llm.setScript(async (req) => {
    const id = /\n(inflight-\d+)\n/.exec(req.body.messages[1]!.content)?.[1];
    if (!id) return { content: planAnswer() };
    asked.set(id, (asked.get(id) ?? 0) + 1);
    if (asked.get(id) === 1) await new Promise<void>((r) => releases.push(r));
    return { content: planAnswer(`Plan für ${id}`) };
  });
  const [a, b] = [await spawn('a'), await spawn('b')];
  await eventually(async () => (await db.pool.query(`SELECT count(DISTINCT pid)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted AND objsubid = 2 AND classid::int8 = $1`, [PARTITION_NS])).rows[0].n === 2, 'both daemons own partitions');
  const t0 = Date.now();
  const ids = Array.from({ length: 8 }, (_, i) => `inflight-${i}`);
  for (const id of ids) await pushChange(db.pool, { userId: `user-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: iso(t0 + 300) }) });
  await eventually(() => asked.size === ids.length, 'every mission is in flight, its LLM answer held');
  const byWorker = async () => (await db.pool.query(`SELECT mission_id, claimed_by FROM mana_ai.mission_runs WHERE mission_id LIKE 'inflight-%'`)).rows as { mission_id: string; claimed_by: string }[];
  const claims = await byWorker();
  const ofA = claims.filter((c) => c.claimed_by === 'a').map((c) => c.mission_id);
  const ofB = claims.filter((c) => c.claimed_by === 'b').map((c) => c.mission_id);
  assert.ok(ofA.length > 0 && ofB.length > 0, `both daemons have runs in flight (a: ${ofA.length}, b: ${ofB.length})`);

  const killedAt = Date.now();
  a.kill('SIGKILL');
  await a.exited;
  await eventually(async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = ANY($1) AND status = 'done' AND claimed_by = 'b'`, [ofA]);
    return rows[0].n === ofA.length;
  }, 'the dead daemon’s runs are planned by its peer', 15_000);
  const { rows: [{ last }] } = await db.pool.query(`SELECT extract(epoch FROM max(started_at)) * 1000 AS last FROM mana_ai.mission_runs WHERE mission_id = ANY($1)`, [ofA]);
  const takeoverMs = Number(last) - killedAt;
  t.diagnostic(`takeover of ${ofA.length} runs in flight after SIGKILL: ${Math.round(takeoverMs)} ms (last re-claim)`);
  assert.ok(takeoverMs < 10_000, `re-claimed within 10 s (took ${Math.round(takeoverMs)} ms)`);

  // b's own runs are still b's, still in flight: never taken from a live daemon.
  const still = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = ANY($1) AND status = 'running' AND claimed_by = 'b' AND attempts = 1`, [ofB]);
  assert.equal(still.rows[0].n, ofB.length);
  for (const r of releases.splice(0)) r();
  await eventually(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = ANY($1) AND status = 'done'`, [ids])).rows[0].n === ids.length, 'every run done');
  const written = await db.pool.query(`SELECT record_id, count(*)::int AS n FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id LIKE 'inflight-%' GROUP BY record_id`);
  assert.equal(written.rowCount, ids.length);
  assert.ok(written.rows.every((r) => r.n === 1), 'one iteration per mission');
  for (const id of ofB) assert.equal(asked.get(id), 1, `${id}: the live daemon's run was asked once`);
  for (const id of ofA) assert.equal(asked.get(id), 2, `${id}: asked again only because its daemon died mid-run`);
  b.kill('SIGTERM');
  await b.exited;
});

it('a killed watch connection is re-established, so a later SIGKILL of the watched peer still moves its partitions and its missions run', async () => {
  llm.setScript(() => ({ content: planAnswer() }));
  const procs = [await spawn('w1'), await spawn('w2'), await spawn('w3')];
  const slotOf = async (d: DaemonProcess) => Number((await d.waitForLog((l) => l.msg === 'joined the daemons sharing this database'))['slot']);
  const slot3 = await slotOf(procs[2]!);
  const watcherOf = async (slot: number) =>
    (await db.pool.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND NOT granted AND objsubid = 2 AND classid::int8 = $1 AND objid::int8 = $2`, [MEMBER_NS, slot])).rows[0]?.pid as number | undefined;
  await eventually(async () => (await watcherOf(slot3)) !== undefined, 'somebody watches w3');
  const firstWatcher = (await watcherOf(slot3))!;
  await db.pool.query('SELECT pg_terminate_backend($1)', [firstWatcher]);
  await eventually(async () => {
    const w = await watcherOf(slot3);
    return w !== undefined && w !== firstWatcher;
  }, 'w3 is watched again by a new connection');

  procs[2]!.kill('SIGKILL');
  await procs[2]!.exited;
  await eventually(async () => (await db.pool.query(`SELECT count(DISTINCT objid)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted AND objsubid = 2 AND classid::int8 = $1`, [PARTITION_NS])).rows[0].n === 64, 'all 64 partitions owned again', 15_000);
  const due = Date.now() + 300;
  const ids = Array.from({ length: 64 }, (_, i) => `after-${i}`);
  for (const id of ids) await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: iso(due) }) });
  await eventually(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id LIKE 'after-%' AND status = 'done'`)).rows[0].n === ids.length, 'every mission due after the death is planned', 20_000);
  const lost = procs.slice(0, 2).some((d) => d.lines.some((l) => l.msg === 'watch connection lost; watching again'));
  assert.ok(lost, 'the watcher logged the lost connection');
});
