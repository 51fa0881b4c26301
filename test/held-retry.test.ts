// With three daemons, a dead peer's runs that another daemon found `held`
// are retried at once by that daemon, not only by the dead one's watcher
// (issue 18, item 7: before, they waited for the whole lease, 10 minutes).
// P claims every mission alone, its answers held; A and B join, own P's
// former partitions and find those runs held; P is SIGKILLed; whichever of
// A and B is not P's watcher must still take its held runs within seconds.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { MEMBER_NS, PARTITION_NS } from '../src/db/sql/partition-locks.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { spawnDaemon, type DaemonProcess } from './harness/daemon-process.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
const procs: DaemonProcess[] = [];
const inProcess: TestDaemon[] = [];
const releases: (() => void)[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const r of releases) r();
  for (const d of procs) d.kill('SIGKILL');
  await Promise.all(procs.map((d) => d.exited));
  for (const d of inProcess) await d.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const spawn = async (name: string) => {
  const d = await spawnDaemon(name, db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '64' });
  procs.push(d);
  return d;
};
const slotOf = async (d: DaemonProcess) => Number((await d.waitForLog((l) => l.msg === 'joined the daemons sharing this database'))['slot']);

it('a dead peer\'s held runs are retried at once by every daemon that holds them, also one that did not watch it', async (t) => {
  // The first request per mission is held (P's); later ones answer at once.
  const asked = new Map<string, number>();
  llm.setScript(async (req) => {
    const id = /\n(held-\d+)\n/.exec(req.body.messages[1]!.content)?.[1];
    if (!id) return { content: planAnswer() };
    asked.set(id, (asked.get(id) ?? 0) + 1);
    if (asked.get(id) === 1) await new Promise<void>((r) => releases.push(r));
    return { content: planAnswer(`Plan für ${id}`) };
  });
  const p = await spawn('p');
  const ids = Array.from({ length: 16 }, (_, i) => `held-${i}`); // at most 16 requests in flight to one LLM origin (the client's pool)
  const due = Date.now() + 300;
  for (const id of ids) await pushChange(db.pool, { userId: `user-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: iso(due) }) });
  await eventually(() => asked.size === ids.length, 'P has every mission in flight, its answers held').catch((e: Error) => {
    throw new Error(`${e.message}: asked ${asked.size}; ${llm.requests.length} requests; P: ${p.lines.slice(-5).map((l) => JSON.stringify(l)).join(' | ')}`);
  });

  // A and B in this process (only P has to be killable); their runs ask at once.
  const a = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'a', MANA_AI_CONCURRENCY: '64' });
  inProcess.push(a);
  const b = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'b', MANA_AI_CONCURRENCY: '64' });
  inProcess.push(b);
  const slots = { p: await slotOf(p), a: a.reactor!.ownership.witness.slot!, b: b.reactor!.ownership.witness.slot! };
  // Who waits for P's membership lock: P's watcher.
  const watcherPid = async () =>
    (await db.pool.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND NOT granted AND objsubid = 2 AND classid::int8 = $1 AND objid::int8 = $2`, [MEMBER_NS, slots.p])).rows[0]?.pid as number | undefined;
  await eventually(async () => (await watcherPid()) !== undefined, 'somebody watches P');
  // Held runs: A and B claimed P's runs of their new partitions and were told `held`.
  await eventually(async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id LIKE 'held-%' AND status = 'running' AND claimed_by = 'p'`);
    return rows[0].n === ids.length;
  }, 'P still holds every claim');
  const ring = [slots.p, slots.a, slots.b].sort((x, y) => x - y);
  const watcherSlot = ring[(ring.indexOf(slots.p) + ring.length - 1) % ring.length]; // the ring: each daemon watches the next slot up
  const notWatcher = watcherSlot === slots.a ? 'b' : 'a';
  t.diagnostic(`slots p=${slots.p} a=${slots.a} b=${slots.b}; P's watcher has slot ${watcherSlot}; the other is ${notWatcher}`);

  // The missions of the partitions the non-watcher owns now: it found their runs held.
  const pidOfSlot = async (slot: number) =>
    (await db.pool.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted AND objsubid = 2 AND classid::int8 = $1 AND objid::int8 = $2`, [MEMBER_NS, slot])).rows[0].pid as number;
  const nwPid = await pidOfSlot(notWatcher === 'a' ? slots.a : slots.b);
  const nwDaemon = notWatcher === 'a' ? a : b;
  // Ownership settles (three holders, all 64 partitions, the non-watcher at its share) and the
  // missions of the partitions the non-watcher owns are the ones it found held.
  let heldByNotWatcher: string[] = [];
  let lastOwn: unknown = null;
  await eventually(async () => {
    const own = (await db.pool.query(
      `SELECT count(DISTINCT pid)::int AS h, count(DISTINCT objid)::int AS n, count(*) FILTER (WHERE pid = $2)::int AS mine
         FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted AND objsubid = 2 AND classid::int8 = $1`, [PARTITION_NS, nwPid])).rows[0];
    lastOwn = own;
    if (own.h !== 3 || own.n !== 64 || own.mine < 20) return false;
    const { rows } = await db.pool.query(
      `SELECT s.mission_id FROM mana_ai.mission_snapshots s
        WHERE s.mission_id LIKE 'held-%'
          AND s.partition IN (SELECT objid::int FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted AND objsubid = 2 AND classid::int8 = $1 AND pid = $2)`,
      [PARTITION_NS, nwPid],
    );
    heldByNotWatcher = rows.map((r) => r.mission_id as string);
    return heldByNotWatcher.length > 0;
  }, 'ownership settled, and the non-watcher owns some of P\'s former missions', 40_000).catch((e: Error) => {
    throw new Error(`${e.message}: ${JSON.stringify(lastOwn)}, ${heldByNotWatcher.length} missions`);
  });
  const heldCount = async () => {
    const text = await nwDaemon.metrics.registry.metrics();
    return Number(/mana_ai_claims_total\{outcome="held",service="mana-ai"\} (\d+)/.exec(text)?.[1] ?? 0);
  };
  await eventually(async () => (await heldCount()) >= heldByNotWatcher.length, 'the non-watcher tried them and was told held');

  const killedAt = Date.now();
  p.kill('SIGKILL');
  await p.exited;
  // Every run P held is planned again within 10 s (the lease is 10 min), by A or B.
  await eventually(async () => {
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id LIKE 'held-%' AND status = 'done'`);
    return rows[0].n === ids.length;
  }, 'every held run planned after P died', 15_000);
  const { rows: done } = await db.pool.query(`SELECT claimed_by, count(*)::int AS n, extract(epoch FROM max(started_at)) * 1000 AS last FROM mana_ai.mission_runs WHERE mission_id LIKE 'held-%' GROUP BY claimed_by`);
  t.diagnostic(`after the kill: ${done.map((r) => `${r.claimed_by}: ${r.n} (last ${Math.round(Number(r.last) - killedAt)} ms)`).join(', ')}`);
  const { rows: retaken } = await db.pool.query(
    `SELECT mission_id, claimed_by, extract(epoch FROM started_at) * 1000 AS started FROM mana_ai.mission_runs WHERE mission_id = ANY($1)`, [heldByNotWatcher]);
  for (const r of retaken) {
    assert.equal(r.claimed_by, notWatcher, `${r.mission_id}: re-claimed by the daemon that held it`);
    assert.ok(Number(r.started) - killedAt < 10_000, `${r.mission_id}: re-claimed ${Math.round(Number(r.started) - killedAt)} ms after P died, not after the lease`);
  }
});
