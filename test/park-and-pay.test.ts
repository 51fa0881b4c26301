// Issue 27, items 4, 5 and 6, through the real daemon:
//  - only a mission's own failures park it: mana-llm answering 503 for
//    many due times never parks a healthy mission; the streak starts again
//    at an unpark; a change of only the title unparks it at once (the
//    trigger) and the daemon runs it without waiting its recheck; an
//    operator unparks every mission parked since a time; the parked text
//    says one thing;
//  - native tool calls obey the plan limits (steps, calls per round);
//  - an answer nested 100,000 deep never makes the step check throw, and
//    every answer's tokens are charged, once, also when the run then fails.
// Starts first (about 15 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, toolCallsAnswer, type LlmReply, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';
import { dueNow as dueNowOf } from './harness/due-now.js';
import { pushAgent, updateAgent } from './harness/agents.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];
/** per title: what the model answers */
const script = new Map<string, () => LlmReply>();

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer((req) => {
    for (const [title, reply] of script) if (promptMentions(req, title)) return reply();
    return { content: planAnswer('ok', []) };
  });
});
after(async () => {
  for (const d of daemons) await d.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
/** One daemon per test, stopped when the test ends (daemons of one database share its missions). */
const start = async (t: { after(fn: () => Promise<void>): void }, env: Record<string, string> = {}) => {
  const d = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_MIN_RUN_GAP_MS: '0', MANA_AI_PARKED_RECHECK_MS: '600000', ...env });
  daemons.push(d);
  t.after(async () => {
    daemons.splice(daemons.indexOf(d), 1);
    await d.stop();
  });
  return d;
};
const runsOf = (d: TestDaemon, id: string) => d.events.filter((e) => e.missionId === id);
/** A user's change that makes the mission due now; the run that ended that due time (after any retries). */
const dueNow = (d: TestDaemon, user: string, id: string, data: Record<string, unknown> = {}) => dueNowOf(db.pool, d, { userId: user, missionId: id, data });
const parked = async (id: string) => (await db.pool.query(`SELECT parked FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0]?.parked === true;
const tokensOf = async (user: string) => Number((await db.pool.query(`SELECT coalesce(sum(tokens_used), 0)::int AS n FROM mana_ai.token_usage WHERE user_id = $1`, [user])).rows[0].n);

describe("only a mission's own failures park it", () => {
  it('mana-llm answering 503 no_healthy_provider for six due times: given back and retried, never parked; planned once it recovers', async (t) => {
    const d = await start(t, { MANA_AI_LLM_MAX_ATTEMPTS: '1', MANA_AI_RUN_RETRY_BASE_MS: '50' });
    const user = 'u-outage';
    const id = 'outage-1';
    const title = 'Ausfall des Planers';
    script.set(title, () => ({ status: 503, raw: JSON.stringify({ detail: { kind: 'no_healthy_provider' } }) }));
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, cadence: { kind: 'interval', everyMinutes: 1 }, nextRunAt: iso(Date.now() + 60_000) }) });
    for (let i = 1; i <= 6; i++) {
      const ev = await dueNow(d, user, id);
      assert.equal(ev.outcome, 'failed', `due time ${i}: written as failed after its attempts`);
    }
    assert.ok(runsOf(d, id).some((e) => e.outcome === 'retry'), 'the outage was retried with backoff first');
    assert.equal(await parked(id), false, 'six due times of an outage do not park it');
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = $1 AND status = 'failed' AND error = 'outside'`, [id]);
    assert.equal(rows[0].n, 6, 'each written as a failure outside the mission');
    script.set(title, () => ({ content: planAnswer('wieder da', []) }));
    assert.equal((await dueNow(d, user, id)).outcome, 'planned');
  });

  it('parked after 5 own failures, with one message; a title-only change unparks it at once and it runs without waiting its recheck; the streak starts again', async (t) => {
    const d = await start(t);
    const user = 'u-park';
    const id = 'park-1';
    const title = 'Kaputte Antworten';
    script.set(title, () => ({ content: 'kein Plan, nur Text' }));
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, cadence: { kind: 'interval', everyMinutes: 0.01 }, nextRunAt: iso(Date.now() + 60_000) }) });
    for (let i = 0; i < 5; i++) assert.equal((await dueNow(d, user, id)).outcome, 'failed');
    assert.equal(await parked(id), true);
    const last = (await db.pool.query(`SELECT record FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0].record.iterations.at(-1);
    assert.match(last.summary, /^Diese Mission ist angehalten: 5 Durchläufe nacheinander sind fehlgeschlagen\. Letzter Fehler: Der Planer hat keinen gültigen Plan geliefert\. Sobald du die Mission änderst, plant mana sie wieder\.$/);
    assert.doesNotMatch(last.summary, /erneut/, 'a parked mission promises no next run');
    // its next due time comes (forced: the cadence's minute is long for a test): looked at, not planned, next look in 10 minutes
    const snap = async () => (await db.pool.query(`SELECT sid, next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0];
    const { sid, next_run_at: next } = await snap();
    assert.equal(await d.reactor!.enqueue(Number(sid), next.getTime()), 'parked');
    // the user changes only the objective: no schedule field at all
    const ts = iso(Date.now());
    await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data: { objective: 'Neu formuliert' }, fieldTimestamps: { objective: ts } });
    assert.equal(await parked(id), false, 'unparked by the write itself');
    await eventually(() => d.reactor!.scheduledDue(Number(sid)) === next.getTime(), 'armed at its due time', 5_000);
    await eventually(async () => /mana_ai_missions_unparked_total\{[^}]*\} 1/.test(await d.metrics.registry.metrics()), 'the daemon was told at once (the trigger\'s unpark notification)', 5_000);
    assert.equal(await d.reactor!.enqueue(Number(sid), next.getTime()), 'failed', 'it runs (and the model still fails)');
    assert.equal(await parked(id), false, 'one failure after the unpark does not park it again: the streak started anew');
  });

  it('an operator unparks every mission parked since a time with mana_ai.unpark_all, and they run', async (t) => {
    const d = await start(t);
    const user = 'u-park2';
    const ids = ['park-a', 'park-b'];
    const title = 'Kaputt bis der Betrieb hilft';
    script.set(title, () => ({ content: 'kein Plan' }));
    const since = (await db.pool.query(`SELECT now() AS t`)).rows[0].t as Date;
    for (const id of ids) {
      await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, cadence: { kind: 'interval', everyMinutes: 0.01 }, nextRunAt: iso(Date.now() + 60_000) }) });
      for (let i = 0; i < 5; i++) await dueNow(d, user, id);
      assert.equal(await parked(id), true);
    }
    script.set(title, () => ({ content: planAnswer('geht wieder', []) }));
    const { rows } = await db.pool.query(`SELECT mana_ai.unpark_all($1) AS n`, [since]);
    assert.equal(rows[0].n, 2);
    for (const id of ids) {
      assert.equal(await parked(id), false);
      const { sid, next_run_at: next } = (await db.pool.query(`SELECT sid, next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0];
      await eventually(() => d.reactor!.scheduledDue(Number(sid)) === next.getTime(), `${id} re-armed at its due time`, 5_000);
      assert.equal(await d.reactor!.enqueue(Number(sid), next.getTime()), 'planned');
    }
  });
});

describe('plan limits and paid answers', () => {
  it('tool mode: a model answering 2,000 valid calls a round gets at most 20 steps into the plan; the rounds stop', async (t) => {
    const d = await start(t, { MANA_AI_PLANNER_MODE: 'tools' });
    const user = 'u-limits';
    const id = 'limits-1';
    const title = 'Viele Aufgaben';
    let rounds = 0;
    script.set(title, () => {
      rounds += 1;
      return toolCallsAnswer(Array.from({ length: 2000 }, (_, i) => ({ name: 'create_task', args: { title: `Aufgabe ${rounds}-${i}` }, id: `c${rounds}-${i}` })));
    });
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(Date.now() + 60_000) }) });
    const ev = await dueNow(d, user, id);
    assert.equal(ev.outcome, 'planned');
    assert.equal(ev.iteration!.plan.length, 20, 'PLAN_LIMITS.callsPerRound');
    assert.equal(rounds, 1, 'no second round after the limit');
    // 15 valid calls a round: the plan's own bound stops it in the second round
    const id2 = 'limits-2';
    const title2 = 'Etwas weniger Aufgaben';
    let rounds2 = 0;
    script.set(title2, () => {
      rounds2 += 1;
      return toolCallsAnswer(Array.from({ length: 15 }, (_, i) => ({ name: 'create_task', args: { title: `Teil ${rounds2}-${i}` }, id: `d${rounds2}-${i}` })));
    });
    await pushChange(db.pool, { userId: user, recordId: id2, op: 'insert', data: webappMission({ id: id2, title: title2, nextRunAt: iso(Date.now() + 60_000) }) });
    const ev2 = await dueNow(d, user, id2);
    assert.equal(ev2.iteration!.plan.length, 20, 'PLAN_LIMITS.stepsPerPlan');
    assert.equal(rounds2, 2, 'the rounds stop at the plan limit');
  });

  it('an answer nested 100,000 deep is refused as a step, never thrown; its tokens are charged though the agent-less run writes no step', async (t) => {
    const d = await start(t, { MANA_AI_WEBAPP: 'head' });
    const user = 'u-deep';
    const id = 'deep-1';
    const title = 'Tiefe Rechnung';
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    script.set(title, () => ({
      raw: JSON.stringify({
        choices: [{ message: { role: 'assistant', content: `{"summary":"x","steps":[{"summary":"Rechnung","toolName":"create_invoice","params":{"clientName":"A","lines":${deep}},"rationale":"weil"}]}` } }],
        usage: { total_tokens: 50_000 },
      }),
    }));
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(Date.now() + 60_000) }) });
    const ev = await dueNow(d, user, id);
    assert.notEqual(ev.outcome, 'failed', `the run did not fail: ${ev.error ?? ''}`);
    assert.equal(ev.iteration!.plan.length, 0, 'the step is refused');
    // the repair round asked again (same answer): two answers, both paid
    assert.equal(await tokensOf(user), 100_000);
  });

  it('a run that fails after its answer arrived still pays for it, once, also across the retries of its claim', async (t) => {
    const d = await start(t, { MANA_AI_RUN_RETRY_BASE_MS: '50' });
    const user = 'u-paid';
    const id = 'paid-1';
    const title = 'Bezahlt trotz Fehler';
    script.set(title, () => ({ content: planAnswer('Plan', []), usage: { total_tokens: 1234 } }));
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(Date.now() + 60_000) }) });
    // the write-back's insert is refused twice (a revoked right: outside the mission), then allowed again
    await db.pool.query(`REVOKE INSERT ON public.sync_changes FROM mana_ai_runtime`);
    const n = runsOf(d, id).length;
    const ts = iso(Date.now());
    await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data: { nextRunAt: iso(Date.now() + 30) }, fieldTimestamps: { nextRunAt: ts } });
    await eventually(() => runsOf(d, id).slice(n).filter((e) => e.outcome === 'retry').length >= 2, 'two retries of the write-back');
    assert.equal(await tokensOf(user), 1234, 'charged when the answer arrived, before the write-back failed');
    await db.pool.query(`GRANT INSERT ON public.sync_changes TO mana_ai_runtime`);
    await eventually(() => runsOf(d, id).slice(n).some((e) => e.outcome === 'planned'), 'written by a retry with the kept plan');
    assert.equal(await tokensOf(user), 1234, 'the kept plan is not paid again');
  });
});

describe('a kept plan', () => {
  it('is checked again against the agent\'s policy when a retry writes it: a tool denied meanwhile is not written', async (t) => {
    const d = await start(t, { MANA_AI_RUN_RETRY_BASE_MS: '50' });
    const user = 'u-kept';
    const id = 'kept-1';
    const title = 'Behaltener Plan';
    await pushAgent(db.pool, user, 'ag-kept');
    script.set(title, () => ({ content: planAnswer('Plan', [{ summary: 'Aufgabe anlegen', toolName: 'create_task', params: { title: 'Einkaufen' }, rationale: 'weil' }]) }));
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, agentId: 'ag-kept', nextRunAt: iso(Date.now() + 60_000) }) });
    await db.pool.query(`REVOKE INSERT ON public.sync_changes FROM mana_ai_runtime`);
    try {
      const n = runsOf(d, id).length;
      await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data: { nextRunAt: iso(Date.now() + 30) }, fieldTimestamps: { nextRunAt: iso(Date.now()) } });
      await eventually(() => runsOf(d, id).slice(n).some((e) => e.outcome === 'retry'), 'the write-back failed and the plan was kept');
      await updateAgent(db.pool, user, 'ag-kept', { policy: { tools: { create_task: 'deny' }, defaultForAi: 'propose' } });
    } finally {
      await db.pool.query(`GRANT INSERT ON public.sync_changes TO mana_ai_runtime`);
    }
    await eventually(() => runsOf(d, id).some((e) => e.outcome === 'planned'), 'written by a retry');
    const written = runsOf(d, id).find((e) => e.outcome === 'planned')!.iteration!;
    assert.equal(written.plan.length, 0, 'the step the agent now denies is not written');
    assert.match(written.summary, /nicht mehr erlaubt/);
  });
});
