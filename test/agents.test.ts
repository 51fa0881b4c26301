// Agents (CONTRACT.md section 10, issue 12) with the real daemon, as the
// least-privileged runtime role, against a real Postgres: gates (paused,
// archived, deleted), per-agent concurrency forced by held LLM answers and
// checked against a second claimer, tool policy in prompt and parser, the
// agent's prompt section without encrypted values, the write-back actor.
// Budgets are in agent-budget.test.ts.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AgentPayload } from '../src/reactor/listener.js';
import { RUNTIME_ROLE, createTestDatabase, type TestDb } from './harness/db.js';
import { pushAgent as pushAgentAs, updateAgent as updateAgentAs } from './harness/agents.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmRequest, type LlmServer } from './harness/llm-server.js';
import { registerSecret } from './harness/log-capture.js';
import { runOf, runStarted, startTestDaemon, until, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
const extra: TestDaemon[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'agents-a' });
});
after(async () => {
  for (const d of extra) await d.stop();
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

const pushAgent = (userId: string, id: string, over: Record<string, unknown> = {}) => pushAgentAs(db.pool, userId, id, over);
const updateAgent = (userId: string, id: string, data: Record<string, unknown>) => updateAgentAs(db.pool, userId, id, data);

const pushMission = (userId: string, id: string, over: Record<string, unknown> = {}) =>
  pushChange(db.pool, { userId, recordId: id, op: 'insert', data: webappMission({ id, title: `Mission ${id}`, ...over }) });

const sidOf = async (missionId: string): Promise<number> =>
  (await db.pool.query('SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = $1', [missionId])).rows[0].sid;

const runsOf = async (missionId: string) =>
  (await db.pool.query(`SELECT status, started_at, finished_at FROM mana_ai.mission_runs WHERE mission_id = $1 ORDER BY started_at`, [missionId])).rows;

const asksAbout = (title: string) => (r: LlmRequest) => r.body.messages.some((m) => m.content.includes(title));

async function decisions(d: TestDaemon): Promise<Record<string, number>> {
  const text = await d.metrics.registry.getSingleMetricAsString('mana_ai_agent_decisions_total');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/decision="([^"]+)"[^}]*\} (\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

describe('agents', () => {
  it('folds agents into agent_snapshots; only scheduling-relevant changes notify; a mission exposes its agentId', async () => {
    const listen = await db.pool.connect();
    const got: AgentPayload[] = [];
    listen.on('notification', (n) => {
      if (n.channel === 'mana_ai_agents') got.push(JSON.parse(n.payload!));
    });
    await listen.query('LISTEN mana_ai_agents');
    try {
      await pushAgent('u-fold', 'ag-fold', { maxTokensPerDay: 1234, maxConcurrentMissions: 2 });
      await eventually(() => got.length === 1, 'insert notified');
      assert.deepEqual({ ...got[0], g: 0, v: 0 }, { g: 0, v: 0, p: got[0]!.p, s: 'active', c: 2, b: 1234 });
      assert.ok(got[0]!.v >= 1);
      await updateAgent('u-fold', 'ag-fold', { name: 'Neuer Name', avatar: '🦊', memory: 'enc:1:abc.def' });
      await updateAgent('u-fold', 'ag-fold', { state: 'paused' });
      // Notifications arrive in commit order: the next one is the pause, not the rename.
      await eventually(() => got.length >= 2, 'pause notified');
      assert.equal(got.length, 2);
      assert.equal(got[1]!.s, 'paused');
      assert.ok(got[1]!.v >= got[0]!.v + 2, 'the rename took a version of its own (versions come from one sequence, sql/functions/snapshot-store.sql)');
      await updateAgent('u-fold', 'ag-fold', { policy: { tools: { create_task: 'deny' }, defaultForAi: 'propose' } });
      await eventually(() => got.length === 3, 'policy change notified');
      const snap = (await db.pool.query(`SELECT gate, max_concurrent, max_tokens_per_day, record->>'name' AS name, policy FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-fold'`)).rows[0];
      assert.deepEqual(snap, { gate: 'paused', max_concurrent: 2, max_tokens_per_day: 1234, name: 'Neuer Name', policy: { tools: { create_task: 'deny' }, defaultForAi: 'propose' } });
      await pushMission('u-fold', 'm-fold', { agentId: 'ag-fold', nextRunAt: iso(Date.now() + 3_600_000) });
      const m = (await db.pool.query(`SELECT agent_id, agent_ref = (SELECT agent_ref FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-fold') AS same FROM mana_ai.mission_snapshots WHERE mission_id = 'm-fold'`)).rows[0];
      assert.deepEqual(m, { agent_id: 'ag-fold', same: true });
    } finally {
      await listen.query('UNLISTEN *');
      listen.release();
    }
  });

  it('an agent row that cannot be folded is recorded (kind agent) and the insert commits', async () => {
    await pushChange(db.pool, { userId: 'u-bad', recordId: 'ag-bad', appId: 'ai', tableName: 'agents', op: 'insert', data: [1, 2, 3] });
    const e = (await db.pool.query(`SELECT kind, transient FROM mana_ai.snapshot_errors WHERE record_id = 'ag-bad'`)).rows;
    assert.deepEqual(e, [{ kind: 'agent', transient: false }]);
    const n = (await db.pool.query(`SELECT count(*)::int AS n FROM sync_changes WHERE record_id = 'ag-bad'`)).rows[0].n;
    assert.equal(n, 1);
  });

  it('a transient agent fold error is repaired from the agent rows', async () => {
    await pushAgent('u-rep', 'ag-rep', { name: 'Vorher' });
    await updateAgent('u-rep', 'ag-rep', { name: 'Nachher' });
    // Stand-in for a fold lost to a deadlock: the snapshot is behind the log.
    await db.pool.query(`UPDATE mana_ai.agent_snapshots SET record = record || '{"name":"Vorher"}' WHERE agent_id = 'ag-rep'`);
    const id = (await db.pool.query(
      `INSERT INTO mana_ai.snapshot_errors (user_id, record_id, op, error, sqlstate, transient, partition, kind)
       VALUES ('u-rep', 'ag-rep', 'update', 'deadlock detected', '40P01', true, mana_ai.user_partition('u-rep'), 'agent') RETURNING id`,
    )).rows[0].id;
    const runtime = new (await import('pg')).default.Pool({ connectionString: db.daemonUrl, max: 1 });
    try {
      const out = (await runtime.query('SELECT mana_ai.repair_snapshot_error($1) AS o', [id])).rows[0].o;
      assert.equal(out, 'repaired');
    } finally {
      await runtime.end();
    }
    const name = (await db.pool.query(`SELECT record->>'name' AS n FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-rep'`)).rows[0].n;
    assert.equal(name, 'Nachher');
  });

  it("a paused agent's due mission is not planned, and is planned once within a second of the agent becoming active", async () => {
    await pushAgent('u-p', 'ag-p', { state: 'paused' });
    // Due three hours ago with an hourly cadence: it missed three slots.
    await pushMission('u-p', 'm-p', { agentId: 'ag-p', nextRunAt: iso(Date.now() - 3 * 3_600_000), cadence: { kind: 'interval', everyMinutes: 60 } });
    const sid = await sidOf('m-p');
    await until(daemon.reactor!, 'agent-held', () => daemon.reactor!.gates.isWaiting(sid));
    assert.equal(llm.requests.filter(asksAbout('Mission m-p')).length, 0);
    assert.deepEqual(await runsOf('m-p'), []);

    const started = runStarted(daemon, 'm-p');
    const resumedAt = Date.now();
    await updateAgent('u-p', 'ag-p', { state: 'active' });
    const startedAt = await started;
    assert.ok(startedAt - resumedAt < 1000, `run started ${startedAt - resumedAt} ms after the agent was resumed`);
    const ev = await runOf(daemon, 'm-p');
    assert.equal(ev.outcome, 'planned');
    assert.equal(ev.agentId, 'ag-p');
    assert.ok(ev.nextRunAtMs! > Date.now() + 50 * 60_000, 'next run an hour from now, not the next missed slot');
    assert.equal((await runsOf('m-p')).length, 1);
    assert.equal(llm.requests.filter(asksAbout('Mission m-p')).length, 1);
  });

  it("an archived or deleted agent's missions never run (held in memory, refused by the claim)", async () => {
    await pushAgent('u-a', 'ag-arch', { state: 'archived' });
    await pushAgent('u-a', 'ag-del', { deletedAt: iso(Date.now() - 500) });
    await pushMission('u-a', 'm-arch', { agentId: 'ag-arch' });
    await pushMission('u-a', 'm-del', { agentId: 'ag-del' });
    const [sa, sd] = [await sidOf('m-arch'), await sidOf('m-del')];
    await until(daemon.reactor!, 'agent-held', () => daemon.reactor!.gates.isWaiting(sa) && daemon.reactor!.gates.isWaiting(sd));
    // A tick hands them to the gates again: still held.
    await daemon.reactor!.tick();
    assert.ok(daemon.reactor!.gates.isWaiting(sa) && daemon.reactor!.gates.isWaiting(sd));
    // The claim is the last guard, for any daemon.
    const claim = async (sid: number) =>
      (await db.pool.query(
        `SELECT outcome FROM mana_ai.claim_run($1, (SELECT next_run_at FROM mana_ai.mission_snapshots WHERE sid = $1), 'intruder', interval '10 minutes', interval '0', NULL, NULL, NULL)`,
        [sid],
      )).rows[0].outcome;
    assert.equal(await claim(sa), 'agent-archived');
    assert.equal(await claim(sd), 'agent-deleted');
    assert.deepEqual(await runsOf('m-arch'), []);
    assert.deepEqual(await runsOf('m-del'), []);
    assert.equal(llm.requests.filter((r) => asksAbout('Mission m-arch')(r) || asksAbout('Mission m-del')(r)).length, 0);
    const d = await decisions(daemon);
    assert.ok((d['skipped-archived'] ?? 0) >= 2, JSON.stringify(d));
    assert.ok((d['skipped-paused'] ?? 0) >= 1, JSON.stringify(d));
  });

  it('a mission whose agent record does not exist runs as before, with the system actor', async () => {
    await pushMission('u-none', 'm-none', { agentId: 'no-such-agent' });
    const ev = await runOf(daemon, 'm-none');
    assert.equal(ev.outcome, 'planned');
    const actor = (await db.pool.query(`SELECT actor FROM sync_changes WHERE record_id = 'm-none' AND client_id = 'mana-ai-runner'`)).rows[0].actor;
    assert.deepEqual(actor, { kind: 'system', source: 'mission-runner' });
  });

  it('maxConcurrentMissions 1: three due missions run one after another, also against a second daemon', async () => {
    const b = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'agents-b' });
    extra.push(b);
    await until([daemon.reactor!.ownership, b.reactor!.ownership], 'changed', () => b.reactor!.ownership.owned.size > 0 && daemon.reactor!.ownership.owned.size + b.reactor!.ownership.owned.size === 64);
    await pushAgent('u-c', 'ag-c', { maxConcurrentMissions: 1 });
    const titles = ['Mission c1', 'Mission c2', 'Mission c3'];
    let inFlight = 0;
    let maxInFlight = 0;
    const releases: (() => void)[] = [];
    const arrived: string[] = [];
    llm.setScript(async (req) => {
      const title = titles.find((t) => asksAbout(t)(req));
      if (!title) return { content: planAnswer() };
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      arrived.push(title);
      await new Promise<void>((r) => releases.push(r));
      inFlight -= 1;
      return { content: planAnswer() };
    });
    try {
      const due = iso(Date.now() - 1000);
      for (const [i, id] of ['c1', 'c2', 'c3'].entries()) {
        await pushMission('u-c', id, { agentId: 'ag-c', nextRunAt: due, title: titles[i] });
      }
      const sids = await Promise.all(['c1', 'c2', 'c3'].map(sidOf));
      for (let k = 1; k <= 3; k++) {
        await eventually(() => arrived.length === k, `request ${k} arrived`);
        // The others are held by the agent's gate, in whichever daemon owns the user.
        const waiting = () => sids.filter((s) => daemon.reactor!.gates.isWaiting(s) || b.reactor!.gates.isWaiting(s)).length;
        await eventually(() => waiting() === 3 - k, `${3 - k} missions waiting for the agent's slot`);
        if (k < 3) {
          // A second claimer (any daemon) is refused while the run is in flight.
          const other = sids.find((s) => daemon.reactor!.gates.isWaiting(s) || b.reactor!.gates.isWaiting(s))!;
          const { rows } = await db.pool.query(
            `SELECT outcome, retry_at FROM mana_ai.claim_run($1, (SELECT next_run_at FROM mana_ai.mission_snapshots WHERE sid = $1), 'intruder', interval '10 minutes', interval '0', NULL, NULL, NULL)`,
            [other],
          );
          assert.equal(rows[0].outcome, 'agent-busy');
          assert.ok(rows[0].retry_at instanceof Date);
        }
        assert.equal(inFlight, 1);
        releases.shift()!();
      }
      for (const id of ['c1', 'c2', 'c3']) {
        await eventually(async () => (await runsOf(id))[0]?.status === 'done', `${id} done`);
      }
      assert.equal(maxInFlight, 1);
      const spans = (await Promise.all(['c1', 'c2', 'c3'].map(runsOf))).map((r) => r[0]).sort((x, y) => x.started_at - y.started_at);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i].started_at >= spans[i - 1].finished_at, 'runs of the agent never overlap');
      assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id IN ('c1','c2','c3')`)).rows[0].n, 3);
    } finally {
      for (const r of releases) r();
      llm.setScript(() => ({ content: planAnswer() }));
      // The remaining tests watch daemon A: it takes every partition back.
      await b.stop();
      extra.splice(extra.indexOf(b), 1);
      await until(daemon.reactor!.ownership, 'changed', () => daemon.reactor!.ownership.owned.size === 64);
    }
  });

  it('a denied tool is not offered, not in the answer-format example, and a step using it is refused and never written', async () => {
    await pushAgent('u-pol', 'ag-pol', { policy: { tools: { create_task: 'deny', complete_task: 'auto' }, defaultsByModule: { places: 'deny' }, defaultForAi: 'propose' } });
    let prompt = '';
    let asked = 0;
    llm.setScript((req) => {
      if (!asksAbout('Mission m-pol')(req)) return { content: planAnswer() };
      asked += 1;
      if (asked === 1) prompt = req.body.messages.map((m) => m.content).join('\n');
      return { content: planAnswer('Aufgabe', [{ summary: 'x', toolName: 'create_task', params: { title: 'X' }, rationale: 'weil' }]) };
    });
    try {
      await pushMission('u-pol', 'm-pol', { agentId: 'ag-pol' });
      const ev = await runOf(daemon, 'm-pol');
      for (const denied of ['create_task', 'create_place', 'record_visit']) assert.ok(!prompt.includes(`- ${denied} `), `${denied} offered`);
      for (const offered of ['complete_task', 'complete_tasks_by_title', 'create_event', 'undo_last_drink']) assert.ok(prompt.includes(`- ${offered} `), `${offered} missing`);
      assert.ok(!prompt.includes('"toolName": "create_task"'), 'the answer-format example names no denied tool');
      assert.equal(asked, 2, 'asked once more, told the tool is not allowed');
      assert.equal(ev.outcome, 'planned');
      assert.deepEqual(ev.iteration?.plan, [], 'the denied step is never written');
      assert.match(ev.iteration?.summary ?? '', /weggelassen.*create_task/);
      const rejected = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_plan_steps_rejected_total');
      assert.match(rejected, /reason="denied-tool",service="mana-ai"\} [1-9]/);
    } finally {
      llm.setScript(() => ({ content: planAnswer() }));
    }
  });

  it('the prompt has the agent section with plaintext values only; encrypted ones reach neither prompt nor logs', async () => {
    const encPrompt = 'enc:1:c2VjcmV0LWl2.cHJvbXB0LWNpcGhlcnRleHQtdGhhdC1tdXN0LW5vdC1sZWFr';
    const encMemory = 'enc:1:bWVtb3J5LWl2.bWVtb3J5LWNpcGhlcnRleHQtdGhhdC1tdXN0LW5vdC1sZWFr';
    registerSecret('encrypted agent systemPrompt', encPrompt);
    registerSecret('encrypted agent memory', encMemory);
    await pushAgent('u-pr', 'ag-enc', { name: 'Geheimagent', role: 'hütet Geheimnisse', systemPrompt: encPrompt, memory: encMemory });
    await pushAgent('u-pr', 'ag-plain', { name: 'Klartext', role: 'schreibt Listen', systemPrompt: 'Antworte knapp und freundlich.', memory: 'Der Nutzer mag Listen.' });
    await pushMission('u-pr', 'm-enc', { agentId: 'ag-enc' });
    await pushMission('u-pr', 'm-plain', { agentId: 'ag-plain' });
    await runOf(daemon, 'm-enc');
    await runOf(daemon, 'm-plain');
    const text = (t: string) => llm.requests.filter(asksAbout(t)).map((r) => r.body.messages.map((m) => m.content).join('\n')).join('\n');
    const enc = text('Mission m-enc');
    assert.ok(enc.includes('Geheimagent') && enc.includes('hütet Geheimnisse'));
    assert.ok(!enc.includes('enc:1:'), 'no encrypted value in the prompt');
    const plain = text('Mission m-plain');
    for (const s of ['Klartext', 'schreibt Listen', 'Antworte knapp und freundlich.', 'Der Nutzer mag Listen.']) assert.ok(plain.includes(s), `${s} missing`);
    for (const l of daemon.logs) {
      assert.ok(!l.includes(encPrompt) && !l.includes(encMemory), 'encrypted value in a log line');
    }
  });

  it('the write-back actor is the agent of section 10, named as at write time', async () => {
    await pushAgent('u-act', 'ag-act', { name: 'Alter Name' });
    let release!: () => void;
    const asked = new Promise<void>((resolveAsked) => {
      llm.setScript(async (req) => {
        if (!asksAbout('Mission m-act')(req)) return { content: planAnswer() };
        resolveAsked();
        await new Promise<void>((r) => (release = r));
        return { content: planAnswer() };
      });
    });
    try {
      await pushMission('u-act', 'm-act', { agentId: 'ag-act', objective: 'Den Wocheneinkauf planen' });
      await asked;
      await updateAgent('u-act', 'ag-act', { name: 'Neuer Name' });
      release();
      const ev = await runOf(daemon, 'm-act');
      assert.equal(ev.outcome, 'planned');
      const row = (await db.pool.query(`SELECT actor::text AS actor FROM sync_changes WHERE record_id = 'm-act' AND client_id = 'mana-ai-runner'`)).rows[0];
      // Exactly these keys, in this order (jsonb orders keys by length, then bytes; compare as objects too).
      assert.deepEqual(JSON.parse(row.actor), {
        kind: 'ai', principalId: 'ag-act', displayName: 'Neuer Name', missionId: 'm-act', iterationId: ev.iteration!.id, rationale: 'Den Wocheneinkauf planen',
      });
      const usage = (await db.pool.query(`SELECT agent_id, mission_id, tokens_used > 0 AS some, estimated FROM mana_ai.token_usage WHERE mission_id = 'm-act'`)).rows;
      assert.deepEqual(usage, [{ agent_id: 'ag-act', mission_id: 'm-act', some: true, estimated: true }]);
    } finally {
      llm.setScript(() => ({ content: planAnswer() }));
    }
  });

  it('runs as the runtime role: it may insert token usage but not change or delete it', async () => {
    const pgmod = (await import('pg')).default;
    const runtime = new pgmod.Pool({ connectionString: db.daemonUrl, max: 1 });
    try {
      const who = (await runtime.query('SELECT current_user AS u')).rows[0].u;
      assert.equal(who, RUNTIME_ROLE);
      await assert.rejects(runtime.query(`UPDATE mana_ai.token_usage SET tokens_used = 0`), /permission denied/);
      await assert.rejects(runtime.query(`DELETE FROM mana_ai.token_usage`), /permission denied/);
    } finally {
      await runtime.end();
    }
  });
});
