// The native tool-call mode (MANA_AI_PLANNER_MODE=tools, issue 19) with a
// scripted tool-calling model through the real daemon: an invalid call is
// answered {success:false} naming the problem and corrected in the next
// round; a duplicate is written once; a denied tool is never offered and
// refused if called; at most 5 rounds; the tokens of all rounds summed in
// mana_ai.token_usage; a model that cannot call tools (HTTP 400, kind
// capability) makes the run plan in text mode at once.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushAgent } from './harness/agents.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, toolCallsAnswer, type LlmReply, type LlmRequest, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_PLANNER_MODE: 'tools' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const usage = { prompt_tokens: 30, completion_tokens: 10 };
const toolResults = (req: LlmRequest) => req.body.messages.filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content) as { success: boolean; message: string });

/** Scripts the model for one mission: `rounds[i]` answers its i-th request. */
function script(title: string, rounds: ((req: LlmRequest) => LlmReply)[]): LlmRequest[] {
  const seen: LlmRequest[] = [];
  llm.setScript((req) => {
    if (!promptMentions(req, title)) return { content: planAnswer('ok', []) };
    seen.push(req);
    const r = rounds[Math.min(seen.length - 1, rounds.length - 1)]!;
    return r(req);
  });
  return seen;
}

async function plan(id: string, title: string, over: Record<string, unknown> = {}, user = `u-${id}`) {
  await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(Date.now() + 50), ...over }) });
  return runOf(daemon, id);
}

describe('native tool calls', () => {
  it('offers the catalog as function specs; an invalid call is answered with the problem and corrected; a duplicate is written once; tokens of every round summed', async () => {
    const title = 'Native Reparatur';
    const seen = script(title, [
      () => toolCallsAnswer([
        { name: 'create_event', args: { title: 'Zahnarzt', startIso: '2026-05-04T09:00:00Z', schritt: 'Den Zahnarzttermin eintragen.' } },
        { name: 'create_task', args: { title: 'Einkaufen', schritt: 'Eine Einkaufsaufgabe anlegen.' } },
      ], null, usage),
      () => toolCallsAnswer([
        { name: 'create_event', args: { title: 'Zahnarzt', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00Z', schritt: 'Den Zahnarzttermin eintragen.' } },
        { name: 'create_task', args: { title: 'Einkaufen' } },
      ], null, usage),
      () => toolCallsAnswer([], 'Termin und Einkauf sind geplant.', usage),
    ]);
    const ev = await plan('nat-1', title);
    assert.equal(seen.length, 3);
    const specs = seen[0]!.body.tools!;
    assert.equal(seen[0]!.body.tool_choice, 'auto');
    assert.deepEqual(specs.map((t) => t.function.name).sort(), ['complete_task', 'complete_tasks_by_title', 'create_event', 'create_place', 'create_task', 'record_visit', 'undo_last_drink']);
    assert.deepEqual(specs.find((t) => t.function.name === 'create_event')!.function.parameters.required, ['title', 'startTime', 'endTime']);
    const firstAnswers = toolResults(seen[1]!);
    assert.equal(firstAnswers[0]!.success, false);
    assert.match(firstAnswers[0]!.message, /Pflichtparameter startTime fehlt/);
    assert.deepEqual(firstAnswers[1], { success: true, message: 'Im Plan.' });
    assert.equal(seen[1]!.body.messages.filter((m) => m.role === 'assistant').length, 1, 'the assistant message goes back as it came');
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(ev.iteration!.plan.map((s) => s.intent), [
      { kind: 'toolCall', toolName: 'create_task', params: { title: 'Einkaufen' } },
      { kind: 'toolCall', toolName: 'create_event', params: { title: 'Zahnarzt', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00Z' } },
    ], 'the valid calls in order, the duplicate once, without `schritt`');
    assert.deepEqual(ev.iteration!.plan.map((s) => s.summary), ['Eine Einkaufsaufgabe anlegen.', 'Den Zahnarzttermin eintragen.']);
    assert.equal(ev.iteration!.summary, 'Termin und Einkauf sind geplant.');
    const { rows } = await db.pool.query(`SELECT sum(tokens_used)::int AS n FROM mana_ai.token_usage WHERE mission_id = 'nat-1'`);
    assert.equal(rows[0].n, 120, 'three rounds of 40 tokens, charged as one run');
  });

  it('at most 5 rounds', async () => {
    const title = 'Native endlos';
    let n = 0;
    const seen = script(title, [() => toolCallsAnswer([{ name: 'create_task', args: { title: `Aufgabe ${++n}` } }])]);
    const ev = await plan('nat-5', title);
    assert.equal(seen.length, 5);
    assert.equal(ev.iteration!.plan.length, 5);
  });

  it('a tool the agent denies is not offered, and refused when called anyway', async () => {
    const title = 'Native verboten';
    await pushAgent(db.pool, 'u-nat-d', 'ag-nat', { policy: { tools: { create_task: 'deny' }, defaultForAi: 'propose' } });
    const seen = script(title, [
      () => toolCallsAnswer([{ name: 'create_task', args: { title: 'X' } }, { name: 'complete_task', args: { taskId: 't1' } }]),
      () => toolCallsAnswer([], 'fertig'),
    ]);
    const ev = await plan('nat-d', title, { agentId: 'ag-nat' }, 'u-nat-d');
    assert.ok(!seen[0]!.body.tools!.some((t) => t.function.name === 'create_task'), 'not offered');
    const answers = toolResults(seen[1]!);
    assert.equal(answers[0]!.success, false);
    assert.match(answers[0]!.message, /nicht erlaubt/);
    assert.deepEqual(ev.iteration!.plan.map((s) => s.intent.toolName), ['complete_task']);
  });

  it('a model that cannot call tools (400, kind capability): the same run plans in text mode', async () => {
    const title = 'Native unfähig';
    const seen = script(title, [
      (req) => (req.body.tools ? { status: 400, raw: JSON.stringify({ detail: { kind: 'capability', message: 'model cannot call tools' } }) } : { content: planAnswer('Textplan', [{ summary: 'Aufgabe anlegen.', toolName: 'create_task', params: { title: 'Y' }, rationale: 'weil' }]) }),
    ]);
    const ev = await plan('nat-cap', title);
    assert.equal(seen.length, 2);
    assert.ok(seen[0]!.body.tools && !seen[1]!.body.tools, 'first with tools, then without');
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(ev.iteration!.plan.map((s) => s.intent), [{ kind: 'toolCall', toolName: 'create_task', params: { title: 'Y' } }]);
    const fallbacks = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_planner_fallbacks_total');
    assert.match(fallbacks, /reason="capability",service="mana-ai"\} 1/);
    assert.equal(daemon.logs.filter((l) => l.includes('the model cannot call tools')).length, 1, 'logged once per model');
  });

  it('a mana-llm from before tools (422 to a tool message): the same run plans in text mode', async () => {
    const title = 'Native alt';
    const seen = script(title, [
      (req) => !req.body.tools ? { content: planAnswer('Textplan', [{ summary: 'Aufgabe anlegen.', toolName: 'create_task', params: { title: 'Z' }, rationale: 'weil' }]) }
        : req.body.messages.some((m) => m.role === 'tool') ? { status: 422, raw: JSON.stringify({ detail: 'unknown role tool' }) }
        : toolCallsAnswer([{ name: 'create_task', args: { title: 'Z' } }]),
    ]);
    const ev = await plan('nat-422', title);
    assert.equal(seen.length, 3, 'tools, then a tool message refused, then text');
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(ev.iteration!.plan.map((s) => s.intent), [{ kind: 'toolCall', toolName: 'create_task', params: { title: 'Z' } }]);
  });
});
