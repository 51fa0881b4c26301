// Daily token budgets (CONTRACT.md section 10, issue 12) with the real
// daemon and a real Postgres. Time is moved by ageing usage rows in the
// database (as the superuser; the daemon may only insert them), never by
// sleeping a day: a row aged to "24 h minus 4 s ago" leaves the window 4 s
// from now, and the waiting mission must run then, not earlier, not much
// later.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushAgent as pushAgentAs, updateAgent as updateAgentAs } from './harness/agents.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY, runOf as runOfIn, runStarted as runStartedIn, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  // 600 tokens per answer, as the stand-in reports them.
  llm = await startLlmServer(() => ({ content: planAnswer(), usage: { total_tokens: 600, prompt_tokens: 500, completion_tokens: 100 } }));
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

const pushAgent = (userId: string, id: string, over: Record<string, unknown>) => pushAgentAs(db.pool, userId, id, { role: 'plant', ...over });
const updateAgent = (userId: string, id: string, data: Record<string, unknown>) => updateAgentAs(db.pool, userId, id, data);
const pushMission = (userId: string, id: string, agentId: string) =>
  pushChange(db.pool, { userId, recordId: id, op: 'insert', data: webappMission({ id, title: `Mission ${id}`, agentId, nextRunAt: iso(Date.now() - 1000) }) });
const sidOf = async (missionId: string): Promise<number> => (await db.pool.query('SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = $1', [missionId])).rows[0].sid;

const runOf = (missionId: string) => runOfIn(daemon, missionId);
const runStarted = (missionId: string) => runStartedIn(daemon, missionId);

describe('token budgets', () => {
  it('1,000 a day at 600 per answer: the second run happens, the third waits until the window frees enough', async () => {
    await pushAgent('u-b', 'ag-b', { maxTokensPerDay: 1000 });
    await pushMission('u-b', 'b1', 'ag-b');
    assert.equal((await runOf('b1')).outcome, 'planned');
    const row = (await db.pool.query(`SELECT user_id, agent_id, tokens_used, estimated FROM mana_ai.token_usage WHERE mission_id = 'b1'`)).rows;
    assert.deepEqual(row, [{ user_id: 'u-b', agent_id: 'ag-b', tokens_used: 600, estimated: false }]);

    // Age the first run's usage: it leaves the 24 h window 4 s from now.
    await db.pool.query(`UPDATE mana_ai.token_usage SET ts = now() - interval '24 hours' + interval '4 seconds' WHERE mission_id = 'b1'`);
    await pushMission('u-b', 'b2', 'ag-b');
    const second = await runOf('b2');
    assert.equal(second.outcome, 'planned');
    assert.deepEqual(second.tokens, { used: 600, estimated: false });

    // Over budget now, and the overshoot is visible.
    const view = (await db.pool.query(`SELECT used_24h, budget, overshoot, may_run_at FROM mana_ai.agent_budget WHERE agent_id = 'ag-b'`)).rows[0];
    assert.equal(view.used_24h, 1200);
    assert.equal(view.budget, 1000);
    assert.equal(view.overshoot, 200);
    const frees = (await db.pool.query(`SELECT ts + interval '24 hours' AS at FROM mana_ai.token_usage WHERE mission_id = 'b1'`)).rows[0].at as Date;
    assert.equal((view.may_run_at as Date).getTime(), frees.getTime());

    const started = runStarted('b3');
    await pushMission('u-b', 'b3', 'ag-b');
    const sid3 = await sidOf('b3');
    await eventually(() => daemon.reactor!.gates.isWaiting(sid3), 'b3 waits for budget');
    const wait = daemon.reactor!.gates.fields((await db.pool.query(`SELECT agent_ref FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-b'`)).rows[0].agent_ref)!;
    assert.equal(wait.budgetUntilMs, frees.getTime(), 'waits exactly until the oldest counted row leaves the window');
    assert.ok(daemon.logs.some((l) => l.includes('agent budget used up') && l.includes(frees.toISOString())), 'the log line says until when');
    assert.equal(llm.requests.filter((r) => r.body.messages.some((m) => m.content.includes('Mission b3'))).length, 0);

    const startedAt = await started;
    assert.ok(startedAt >= frees.getTime() - 5, `started ${frees.getTime() - startedAt} ms before the window freed`);
    assert.ok(startedAt - frees.getTime() < 2000, `started ${startedAt - frees.getTime()} ms after the window freed`);
    assert.equal((await runOf('b3')).outcome, 'planned');
    const total = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_tokens_used_total');
    assert.match(total, /mana_ai_tokens_used_total\{service="mana-ai"\} 1800/);
    const decisions = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_agent_decisions_total');
    assert.match(decisions, /decision="skipped-budget"[^}]*\} [1-9]/);
    assert.match(decisions, /decision="ran"[^}]*\} 3/);
    // Operators see the agent next to its missions.
    const res = (await fetch(`http://127.0.0.1:${daemon.port}/internal/missions/u-b`, { headers: { 'x-service-key': SERVICE_KEY } }).then((r) => r.json())) as {
      agents: { agent_id: string; budget: number; used_24h: number; name: string }[];
      missions: { mission_id: string; agent_id: string }[];
    };
    assert.deepEqual(res.agents.map((a) => [a.agent_id, a.name, a.budget]), [['ag-b', 'Agent ag-b', 1000]]);
    assert.ok(res.agents[0]!.used_24h >= 1200);
    assert.ok(res.missions.every((m) => m.agent_id === 'ag-b') && res.missions.length === 3);
  });

  it('raising the budget lets the waiting mission run at once', async () => {
    await pushAgent('u-r', 'ag-r', { maxTokensPerDay: 500 });
    await pushMission('u-r', 'r1', 'ag-r');
    assert.equal((await runOf('r1')).outcome, 'planned');
    await pushMission('u-r', 'r2', 'ag-r');
    const sid = await sidOf('r2');
    await eventually(() => daemon.reactor!.gates.isWaiting(sid), 'r2 waits for budget');
    const started = runStarted('r2');
    const raisedAt = Date.now();
    await updateAgent('u-r', 'ag-r', { maxTokensPerDay: 5000 });
    const startedAt = await started;
    assert.ok(startedAt - raisedAt < 1000, `ran ${startedAt - raisedAt} ms after the raise`);
    assert.equal((await runOf('r2')).outcome, 'planned');
  });

  it('a budget of 0: the agent may not run, and waits without a retry time', async () => {
    await pushAgent('u-z', 'ag-z', { maxTokensPerDay: 0 });
    await pushMission('u-z', 'z1', 'ag-z');
    const sid = await sidOf('z1');
    await eventually(() => daemon.reactor!.gates.isWaiting(sid), 'z1 waits');
    const ref = (await db.pool.query(`SELECT agent_ref FROM mana_ai.agent_snapshots WHERE agent_id = 'ag-z'`)).rows[0].agent_ref;
    assert.equal(daemon.reactor!.gates.fields(ref)!.budgetUntilMs, Number.POSITIVE_INFINITY);
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = 'z1'`)).rows[0].n, 0);
    const view = (await db.pool.query(`SELECT may_run_at FROM mana_ai.agent_budget WHERE agent_id = 'ag-z'`)).rows[0];
    assert.equal(view.may_run_at, null);
    const gauge = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_agents_budget_blocked');
    assert.match(gauge, /mana_ai_agents_budget_blocked\{service="mana-ai"\} [1-9]/);
  });

  it('old usage rows are pruned by later inserts (one insert in eight, up to 800 rows, oldest first), never by a loop', async () => {
    await db.pool.query(
      `INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, ts)
       SELECT 'u-old', 'ag-old', 'm-old', 1, now() - interval '3 days' - i * interval '1 second' FROM generate_series(1, 1000) i`,
    );
    const old = async () => (await db.pool.query(`SELECT count(*)::int AS n, coalesce(min(ts), now()) AS oldest FROM mana_ai.token_usage WHERE mission_id = 'm-old'`)).rows[0] as { n: number; oldest: Date };
    // Inserts until every old row is gone: the chance that 400 inserts leave one is below 1e-20.
    let before = await old();
    for (let i = 0; i < 400 && before.n > 0; i++) {
      await db.pool.query(`INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used) VALUES ('u-new', 'ag-new', 'm-new', 5)`);
      const now = await old();
      assert.ok(before.n - now.n <= 800, `one insert pruned ${before.n - now.n} rows`);
      if (now.n > 0 && now.n < before.n) assert.ok(now.oldest.getTime() >= before.oldest.getTime(), 'the oldest go first');
      before = now;
    }
    assert.equal(before.n, 0, 'every old row pruned by inserts');
    assert.ok((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.token_usage WHERE mission_id = 'm-new'`)).rows[0].n >= 1, 'new rows are kept');
  });

  it('budget_frees_at walks the window oldest first', async () => {
    const q = async (budget: number) =>
      (await db.pool.query(`SELECT mana_ai.budget_frees_at('u-w', 'ag-w', $1) AS at, (SELECT array_agg(ts + interval '24 hours' ORDER BY ts) FROM mana_ai.token_usage WHERE user_id = 'u-w') AS outs`, [budget])).rows[0];
    await db.pool.query(
      `INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, ts) VALUES
         ('u-w', 'ag-w', 'm', 300, now() - interval '20 hours'),
         ('u-w', 'ag-w', 'm', 300, now() - interval '10 hours'),
         ('u-w', 'ag-w', 'm', 300, now() - interval '1 hour')`,
    );
    // used 900. Budget 700: dropping the oldest (300) leaves 600 < 700.
    let r = await q(700);
    assert.equal(r.at.getTime(), r.outs[0].getTime());
    // Budget 500: after the oldest 600 left, 300 < 500; the second row's exit.
    r = await q(500);
    assert.equal(r.at.getTime(), r.outs[1].getTime());
    // Budget 100: only when all three have left.
    r = await q(100);
    assert.equal(r.at.getTime(), r.outs[2].getTime());
    r = await q(0);
    assert.equal(r.at, null);
  });
});
