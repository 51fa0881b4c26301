// Claims live as long as their daemon (issue 11): forced with real
// sessions standing in for daemons (a membership slot lock is all a daemon's
// session vouches with). Plus the ownership safety net (partitions whose
// holder vanished without anybody watching are found by the listener's
// check) and POST /internal/tick (only owned partitions, answers at once).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { GEN_NS, MEMBER_NS, PARTITION_NS, PARTITIONS } from '../src/db/sql/partition-locks.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { pushAgent } from './harness/agents.js';
import { holdAnswers, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY, startTestDaemon, until, type TestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];
before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const d of daemons) await d.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

/** A session that holds a membership slot, as a daemon's lock connection does. */
async function fakeDaemon(slot: number): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: db.daemonUrl });
  await client.connect();
  await client.query('SELECT pg_advisory_lock($1::int4, $2::int4)', [MEMBER_NS, slot]);
  const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
  return { client, pid: rows[0].pid };
}

async function claim(sid: number, due: number, worker: string, o: { lease: string; slot: number | null; pid: number | null; gen?: number }) {
  const { rows } = await db.pool.query(
    `SELECT outcome, attempts FROM mana_ai.claim_run($1, to_timestamp($2 / 1000.0), $3, $4::interval, interval '0', $5, $6, $7)`,
    [sid, due, worker, o.lease, o.slot, o.pid, o.gen ?? null],
  );
  return rows[0] as { outcome: string; attempts: number | null };
}

describe('claim witness', () => {
  it('a live daemon keeps its claim past any lease it has not outlived; a dead one loses it at once; an expired lease is the last resort', async () => {
    // A mission due in the past, written while no daemon runs (nobody claims it but us).
    const due = Date.parse('2026-01-05T09:00:00.000Z');
    await pushChange(db.pool, { userId: 'uc', recordId: 'claimed', op: 'insert', data: webappMission({ id: 'claimed', nextRunAt: iso(due) }) });
    const { rows: [{ sid }] } = await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'claimed'`);

    const a = await fakeDaemon(200);
    const b = await fakeDaemon(201);
    try {
      assert.deepEqual(await claim(sid, due, 'a', { lease: '1 hour', slot: 200, pid: a.pid }), { outcome: 'claimed', attempts: 1 });
      assert.equal((await claim(sid, due, 'b', { lease: '1 hour', slot: 201, pid: b.pid })).outcome, 'held', 'a is alive: held');
      await a.client.end(); // a dies: its session and its slot lock are gone
      assert.deepEqual(await claim(sid, due, 'b', { lease: '1 hour', slot: 201, pid: b.pid }), { outcome: 'claimed', attempts: 2 }, 'taken over at once, long before the lease');
      // b is alive but wedged: only its lease ends its claim.
      await db.pool.query(`UPDATE mana_ai.mission_runs SET lease_until = now() - interval '1 second' WHERE mission_id = 'claimed'`);
      assert.deepEqual(await claim(sid, due, 'c', { lease: '1 hour', slot: null, pid: null }), { outcome: 'claimed', attempts: 3 }, 'expired lease: taken although b lives');
      // A claim without a witness (the lock connection was down) ends only with its lease.
      assert.equal((await claim(sid, due, 'd', { lease: '1 hour', slot: 201, pid: b.pid })).outcome, 'held');
    } finally {
      await a.client.end().catch(() => {});
      await b.client.end();
    }
  });
});

describe('claim generation (sql/functions/claim.sql)', () => {
  it('a claim lives while any connection of its daemon holds the generation: one connection\'s blip keeps it, both gone lose it; a live slot and pid without the generation vouch for nothing', async () => {
    const due = Date.parse('2026-01-06T09:00:00.000Z');
    await pushChange(db.pool, { userId: 'ug', recordId: 'gen', op: 'insert', data: webappMission({ id: 'gen', nextRunAt: iso(due) }) });
    const { rows: [{ sid }] } = await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'gen'`);
    const gen = -123456789;
    const holder = async () => {
      const c = new pg.Client({ connectionString: db.daemonUrl });
      await c.connect();
      await c.query('SELECT pg_advisory_lock_shared($1::int4, $2::int4)', [GEN_NS, gen]);
      return c;
    };
    const a = await fakeDaemon(210); // a's partition connection: slot and pid
    await a.client.query('SELECT pg_advisory_lock_shared($1::int4, $2::int4)', [GEN_NS, gen]);
    const listener = await holder(); // a's LISTEN connection
    const b = await fakeDaemon(211);
    try {
      assert.deepEqual(await claim(sid, due, 'a', { lease: '1 hour', slot: 210, pid: a.pid, gen }), { outcome: 'claimed', attempts: 1 });
      await a.client.end(); // the partition connection blips
      assert.equal((await claim(sid, due, 'b', { lease: '1 hour', slot: 211, pid: b.pid, gen: 42 })).outcome, 'held', 'the LISTEN connection still holds the generation: a is alive');
      await listener.end(); // the whole process is gone
      assert.deepEqual(await claim(sid, due, 'b', { lease: '1 hour', slot: 211, pid: b.pid, gen: 42 }), { outcome: 'claimed', attempts: 2 }, 'taken over at once');
      // b's membership session lives on, but b's generation is held by
      // nobody (as after a pid reused by another process): not alive.
      assert.deepEqual(await claim(sid, due, 'c', { lease: '1 hour', slot: null, pid: null, gen: 7 }), { outcome: 'claimed', attempts: 3 }, 'slot and pid alone no longer vouch for a claim that names a generation');
    } finally {
      await a.client.end().catch(() => {});
      await listener.end().catch(() => {});
      await b.client.end();
    }
  });
});

describe('claims in one statement (sql/functions/claim.sql, issue 30)', () => {
  it('claim_runs answers every item of a mixed batch as claim_run answers it alone: the common case set-based, the rest one by one, in order', async () => {
    const due = Date.parse('2026-01-07T09:00:00.000Z');
    const u = 'ub';
    await pushAgent(db.pool, u, 'b-agent', { state: 'active', maxConcurrentMissions: 2 });
    const ids = ['b-new', 'b-moved', 'b-throttled', 'b-held', 'b-finished', 'b-released', 'b-dead', 'b-agent'];
    for (const id of ids) {
      await pushChange(db.pool, { userId: u, recordId: id, op: 'insert', data: webappMission({ id, nextRunAt: iso(due), ...(id === 'b-agent' ? { agentId: 'b-agent' } : {}) }) });
    }
    const { rows } = await db.pool.query<{ mission_id: string; sid: number }>(`SELECT mission_id, sid FROM mana_ai.mission_snapshots WHERE user_id = $1`, [u]);
    const sid = Object.fromEntries(rows.map((r) => [r.mission_id, Number(r.sid)]));
    const live = await fakeDaemon(210);
    const dead = await fakeDaemon(211);
    try {
      assert.equal((await claim(sid['b-held']!, due, 'peer', { lease: '1 hour', slot: 210, pid: live.pid })).outcome, 'claimed');
      assert.equal((await claim(sid['b-dead']!, due, 'gone', { lease: '1 hour', slot: 211, pid: dead.pid })).outcome, 'claimed');
      await dead.client.end();
      assert.equal((await claim(sid['b-finished']!, due, 'peer', { lease: '1 hour', slot: null, pid: null })).outcome, 'claimed');
      assert.equal((await claim(sid['b-released']!, due, 'peer', { lease: '1 hour', slot: null, pid: null })).outcome, 'claimed');
      await db.pool.query(`UPDATE mana_ai.mission_runs SET status = CASE mission_id WHEN 'b-finished' THEN 'done' ELSE 'released' END, lease_until = NULL WHERE mission_id IN ('b-finished', 'b-released')`);
      // b-throttled ran a minute ago for an earlier due time
      assert.equal((await claim(sid['b-throttled']!, due - 3_600_000, 'peer', { lease: '1 hour', slot: null, pid: null })).outcome, 'moved', 'not active at that due time');
      await db.pool.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, attempts, claimed_by, started_at, finished_at)
                           SELECT mission_key, sid, user_id, mission_id, $1, 'done', 1, 'peer', now() - interval '1 minute', now() FROM mana_ai.mission_snapshots WHERE mission_id = 'b-throttled'`, [iso(due - 3_600_000)]);
      const batch = ['b-new', 'b-moved', 'b-throttled', 'b-held', 'b-finished', 'b-released', 'b-dead', 'b-agent', 'b-new'];
      const dues = batch.map((id) => iso(id === 'b-moved' ? due + 60_000 : due));
      const { rows: out } = await db.pool.query<{ ord: number; outcome: string; attempts: number | null; mission_id: string | null; record: { id: string } | null; retry_at: Date | null; agent: { id?: string } | null }>(
        `SELECT ord, outcome, attempts, mission_id, record, retry_at, agent
           FROM mana_ai.claim_runs($1::bigint[], $2::timestamptz[], 'me', interval '1 hour', interval '10 minutes', NULL, NULL, NULL) ORDER BY ord`,
        [batch.map((id) => sid[id]), dues]);
      assert.deepEqual(out.map((r) => [r.ord, r.outcome, r.attempts]), [
        [1, 'claimed', 1], [2, 'moved', null], [3, 'throttled', null], [4, 'held', null], [5, 'finished', null],
        [6, 'claimed', 2], [7, 'claimed', 2], [8, 'claimed', 1], [9, 'held', null],
      ]);
      for (const r of out.filter((x) => x.outcome === 'claimed')) assert.equal(r.record?.id, r.mission_id, 'a claim carries its mission\'s record');
      assert.equal(out[7]!.agent?.id, 'b-agent', 'the agent\'s mission is claimed with its agent');
      assert.ok(out[2]!.retry_at && out[2]!.retry_at.getTime() > Date.now(), 'throttled: tried again after the gap');
      const { rows: runs } = await db.pool.query<{ mission_id: string; claimed_by: string; status: string }>(
        `SELECT mission_id, claimed_by, status FROM mana_ai.mission_runs WHERE user_id = $1 AND due_at = $2 ORDER BY mission_id`, [u, iso(due)]);
      assert.deepEqual(runs.map((r) => [r.mission_id, r.claimed_by, r.status]), [
        ['b-agent', 'me', 'running'], ['b-dead', 'me', 'running'], ['b-finished', 'peer', 'done'], ['b-held', 'peer', 'running'],
        ['b-new', 'me', 'running'], ['b-released', 'me', 'running'],
      ]);
    } finally {
      await live.client.end();
      await dead.client.end().catch(() => {});
      // still due: out of the way of the daemons of the tests below
      for (const id of ids) await pushChange(db.pool, { userId: u, recordId: id, op: 'update', data: { state: 'paused' }, fieldTimestamps: { state: iso(Date.now()) } });
    }
  });
});

describe('ownership and tick', () => {
  it('partitions whose holder vanished while nobody watched are taken at the listener’s next check', async () => {
    // A stand-in peer that holds partitions without a membership slot:
    // nobody watches it, so only the check can notice when it vanishes.
    const ghost = new pg.Client({ connectionString: db.daemonUrl });
    await ghost.connect();
    for (let p = 0; p < 8; p++) await ghost.query('SELECT pg_advisory_lock($1::int4, $2::int4)', [PARTITION_NS, p]);
    const d = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'checker', MANA_AI_LISTENER_CHECK_MS: '500' });
    daemons.push(d);
    assert.equal(d.reactor!.ownership.owned.size, PARTITIONS - 8, 'the ghost’s partitions are held');
    await ghost.end(); // vanishes without a word
    await until(d.reactor!.ownership, 'changed', () => d.reactor!.ownership.owned.size === PARTITIONS);
    assert.ok(d.logs.some((l) => l.includes('partitions without an owner; rebalancing')));
    const metrics = await d.metrics.registry.getSingleMetricAsString('mana_ai_ownership_checks_total');
    assert.match(metrics, /result="unowned",service="mana-ai"\} [1-9]/);
  });

  it('POST /internal/tick counts only the due missions of the partitions this daemon owns, and answers while their runs are still in flight', async () => {
    // The first test's mission is still due (its run held by a claim without witness): out of the way.
    await pushChange(db.pool, { userId: 'uc', recordId: 'claimed', op: 'update', data: { state: 'paused' }, fieldTimestamps: { state: iso(Date.now()) } });
    const held = holdAnswers(llm, () => true);
    const second = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'second' });
    daemons.push(second);
    const [first] = daemons;
    await until([first!.reactor!.ownership, second.reactor!.ownership], 'changed', () => first!.reactor!.ownership.owned.size + second.reactor!.ownership.owned.size === PARTITIONS && second.reactor!.ownership.owned.size > 0);
    const t0 = Date.now();
    for (let i = 0; i < 30; i++) await pushChange(db.pool, { userId: `tick-${i}`, recordId: `tm-${i}`, op: 'insert', data: webappMission({ id: `tm-${i}`, nextRunAt: iso(t0 + 100) }) });
    await held.asked;
    const dueIn = async (d: TestDaemon) =>
      Number((await db.pool.query(`SELECT count(*) FROM mana_ai.mission_snapshots WHERE state = 'active' AND NOT deleted AND next_run_at <= now() AND partition = ANY($1::int[])`, [[...d.reactor!.ownership.owned]])).rows[0].count);
    for (const d of [first!, second]) {
      d.reactor!.tickPageSize = 4; // the tick reads the due missions page by page
      const res = await fetch(`http://127.0.0.1:${d.port}/internal/tick`, { method: 'POST', headers: { 'x-service-key': SERVICE_KEY } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { counts: { due: number; queued: number; partitions: number } };
      assert.equal(body.counts.partitions, d.reactor!.ownership.owned.size);
      assert.equal(body.counts.due, await dueIn(d), 'only its own partitions');
      assert.equal(body.counts.queued, 0, 'each due mission is already queued or in flight: a tick never doubles a run');
    }
    held.release();
  });
});
