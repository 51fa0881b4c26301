// Agents never strand a mission (issue 18, items 5 and 6): a hard-deleted
// and re-created agent still has its later changes seen (its versions
// never go backwards), a mission whose claim answers `agent-paused` while
// memory lets it go is admitted again once that attempt ends, and a queued
// run replaced by a newer due time gives its agent slot back.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushAgent, updateAgent } from './harness/agents.js';
import { pushChange, webappMission } from './harness/changes.js';
import { holdAnswers, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, until, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';
import { CLAIMS_PER_SLOT } from '../src/reactor/run-dispatcher.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '1' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const agentRef = async (agentId: string) => Number((await db.pool.query(`SELECT agent_ref FROM mana_ai.agent_snapshots WHERE agent_id = $1`, [agentId])).rows[0].agent_ref);
const moveMission = (userId: string, id: string, nextRunAtMs: number) => {
  const ts = iso(Date.now());
  return pushChange(db.pool, { userId, recordId: id, op: 'update', data: { nextRunAt: iso(nextRunAtMs) }, fieldTimestamps: { nextRunAt: ts } });
};

describe('agent liveness', () => {
  it('an agent deleted and re-created paused, then resumed: its due mission runs', async () => {
    const u = 'u-recreate';
    await pushAgent(db.pool, u, 'ag-re', { state: 'active' });
    await pushChange(db.pool, { userId: u, recordId: 'm-re', op: 'insert', data: webappMission({ id: 'm-re', title: 'Neu angelegt', agentId: 'ag-re', nextRunAt: iso(Date.now() + 3_600_000) }) });
    const ref = await agentRef('ag-re');
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'active', 'the daemon knows the agent');
    const before = daemon.reactor!.gates.fields(ref)!.version;
    // Hard delete (empty data), then the webapp writes it afresh, paused.
    await pushChange(db.pool, { userId: u, recordId: 'ag-re', appId: 'ai', tableName: 'agents', op: 'delete', data: {} });
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'absent', 'the removal is seen');
    await pushAgent(db.pool, u, 'ag-re', { state: 'paused' });
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'paused', 'the re-created agent is seen (its version is newer than the removal\'s)');
    assert.ok(daemon.reactor!.gates.fields(ref)!.version > before);
    // Due now while paused: it waits with its agent, visibly.
    await moveMission(u, 'm-re', Date.now() + 50);
    await eventually(() => (daemon.reactor!.gates.fields(ref)?.waiting ?? 0) === 1, 'the mission waits with its paused agent');
    await updateAgent(db.pool, u, 'ag-re', { state: 'active' });
    const ev = await runOf(daemon, 'm-re', 20_000);
    assert.equal(ev.outcome, 'planned');
  });

  it('a claim that answers agent-paused while memory already lets the agent run: the mission is admitted again, not dropped', async () => {
    const u = 'u-stale';
    await pushAgent(db.pool, u, 'ag-st', { state: 'active' });
    const ref = await agentRef('ag-st');
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'active', 'the daemon knows the agent');
    await pushChange(db.pool, { userId: u, recordId: 'm-st', op: 'insert', data: webappMission({ id: 'm-st', title: 'Veraltet', agentId: 'ag-st', nextRunAt: iso(Date.now() + 3_600_000) }) });
    const sid = Number((await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'm-st'`)).rows[0].sid);
    const due = (await db.pool.query(`SELECT next_run_at FROM mana_ai.mission_snapshots WHERE sid = $1`, [sid])).rows[0].next_run_at.getTime();
    // The database says paused; memory is told (as a newer notification
    // would) that the agent is active again: the claim reads the older gate.
    await updateAgent(db.pool, u, 'ag-st', { state: 'paused' });
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'paused', 'pause seen');
    const f = daemon.reactor!.gates.fields(ref)!;
    const part = Number((await db.pool.query(`SELECT partition FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-st'`)).rows[0].partition);
    daemon.reactor!.gates.update(ref, part, { version: f.version + 1_000_000, gate: 'active', maxConcurrent: f.maxConcurrent, budget: f.budget });
    const outcome = await daemon.reactor!.enqueue(sid, due);
    assert.equal(outcome, 'agent-paused', 'the claim saw the database');
    // The released mission went back through admit once the attempt ended,
    // and is now with its agent or in the queue, not lost.
    await eventually(() => daemon.reactor!.runsQueued + daemon.reactor!.runsInFlight > 0 || daemon.reactor!.gates.isWaiting(sid) || daemon.events.some((e) => e.missionId === 'm-st'), 'the mission has a future');
    // The database's next gate (resumed) lets it run.
    await updateAgent(db.pool, u, 'ag-st', { state: 'active' });
    await updateAgent(db.pool, u, 'ag-st', { name: 'egal', maxConcurrentMissions: 2 });
    const ev = await runOf(daemon, 'm-st', 20_000);
    assert.equal(ev.outcome, 'planned');
  });

  it('a queued run replaced by a newer due time gives its agent slot back', async () => {
    const u = 'u-slot';
    await pushAgent(db.pool, u, 'ag-slot', { state: 'active', maxConcurrentMissions: 2 });
    const ref = await agentRef('ag-slot');
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'active', 'the daemon knows the agent');
    // The daemon's one slot is taken by another mission whose answer is held,
    // and its claims ahead of a slot (CLAIMS_PER_SLOT, issue 30) by as many
    // others: the agent's mission stays queued.
    const held = holdAnswers(llm, (req) => promptMentions(req, 'Blockiert'));
    await pushChange(db.pool, { userId: 'u-other', recordId: 'm-block', op: 'insert', data: webappMission({ id: 'm-block', title: 'Blockiert', nextRunAt: iso(Date.now() + 50) }) });
    await held.asked;
    const ahead = Array.from({ length: CLAIMS_PER_SLOT }, (_, i) => `m-block-ahead-${i + 1}`);
    for (const id of ahead) {
      await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: 'Blockiert auch', nextRunAt: iso(Date.now() + 50) }) });
    }
    await eventually(async () => (await db.pool.query(`SELECT 1 FROM mana_ai.mission_runs WHERE mission_id = ANY($1) AND status = 'running'`, [ahead])).rowCount === ahead.length, 'the others are claimed ahead of the slot');
    await pushChange(db.pool, { userId: u, recordId: 'm-slot', op: 'insert', data: webappMission({ id: 'm-slot', title: 'Slot', agentId: 'ag-slot', nextRunAt: iso(Date.now() + 50) }) });
    await eventually(() => daemon.reactor!.runsQueued === 1 && daemon.reactor!.gates.fields(ref)!.admitted === 1, 'the agent mission is queued and counted');
    // The user moves it to a newer due time while it waits in the queue.
    await moveMission(u, 'm-slot', Date.now() + 100);
    await eventually(() => daemon.reactor!.gates.fields(ref)!.admitted === 1 && daemon.reactor!.runsQueued === 1, 'the replaced run gave its slot back: still one counted', 10_000);
    held.release();
    const ev = await daemon.waitForRun((e) => e.missionId === 'm-slot' && e.outcome === 'planned');
    assert.equal(ev.outcome, 'planned');
    await until(daemon.reactor!, 'idle', () => daemon.reactor!.runsInFlight === 0 && daemon.reactor!.runsQueued === 0);
    assert.equal(daemon.reactor!.gates.fields(ref)!.admitted, 0, 'every slot released exactly once');
  });

  it('a resync forgets an agent whose removal was never notified: its waiting mission runs without it', async () => {
    const u = 'u-lost';
    await pushAgent(db.pool, u, 'ag-lost', { state: 'paused' });
    const ref = await agentRef('ag-lost');
    await eventually(() => daemon.reactor!.gates.fields(ref)?.gate === 'paused', 'the daemon knows the paused agent');
    await pushChange(db.pool, { userId: u, recordId: 'm-lost', op: 'insert', data: webappMission({ id: 'm-lost', title: 'Verwaist', agentId: 'ag-lost', nextRunAt: iso(Date.now() + 50) }) });
    await eventually(() => (daemon.reactor!.gates.fields(ref)?.waiting ?? 0) === 1, 'the mission waits with its paused agent');
    // The agent's snapshot goes away without a notification (as if the
    // `absent` NOTIFY was lost while the listener was down).
    await db.pool.query(`DELETE FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-lost'`);
    await daemon.reactor!.resync('test');
    assert.equal(daemon.reactor!.gates.fields(ref)?.gate, 'absent');
    const ev = await runOf(daemon, 'm-lost', 20_000);
    assert.equal(ev.outcome, 'planned', 'run as a mission without an agent');
  });
});
