// The five forms the seed's server list had drifted to (CONTRACT.md
// section 6, TOOLS.md), answered by a scripted model through the real
// daemon: the runner names what is wrong, asks once more in the same run,
// and writes the executor's form; a model that does not correct itself
// gets no such step written, and the iteration says why (issue 19).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, type LlmRequest, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const isRepair = (req: LlmRequest) => req.body.messages.length > 2 && req.body.messages.at(-1)!.content.includes('Dein Plan hat Schritte');

const CASES = [
  {
    name: 'complete_tasks_by_title', drifted: { toolName: 'complete_tasks_by_title', params: { titleSubstring: 'Milch' } },
    problem: 'Schritt 1, complete_tasks_by_title: Pflichtparameter titleMatch fehlt',
    fixed: { toolName: 'complete_tasks_by_title', params: { titleMatch: 'Milch' } },
  },
  {
    name: 'create_event', drifted: { toolName: 'create_event', params: { title: 'Zahnarzt', startIso: '2026-05-04T09:00:00Z' } },
    problem: 'Schritt 1, create_event: Pflichtparameter startTime fehlt',
    fixed: { toolName: 'create_event', params: { title: 'Zahnarzt', startTime: '2026-05-04T09:00:00Z', endTime: '2026-05-04T10:00:00Z' } },
  },
  {
    name: 'create_place', drifted: { toolName: 'create_place', params: { name: 'Café Kranzler', category: 'cafe' } },
    problem: 'Schritt 1, create_place: Pflichtparameter latitude fehlt',
    fixed: { toolName: 'create_place', params: { name: 'Café Kranzler', latitude: 52.5049, longitude: 13.3323 } },
  },
  {
    name: 'visit_place', drifted: { toolName: 'visit_place', params: { placeId: 'p-1' } },
    problem: 'Schritt 1, visit_place: Werkzeug visit_place gibt es nicht',
    fixed: { toolName: 'record_visit', params: { placeId: 'p-1' } },
  },
  {
    name: 'undo_drink', drifted: { toolName: 'undo_drink', params: {} },
    problem: 'Schritt 1, undo_drink: Werkzeug undo_drink gibt es nicht',
    fixed: { toolName: 'undo_last_drink', params: {} },
  },
] as const;

const step = (s: { toolName: string; params: Record<string, unknown> }) => ({ summary: `Schritt mit ${s.toolName}`, ...s, rationale: 'weil es ansteht' });

describe('seed-drift forms through the repair round', () => {
  for (const c of CASES) {
    it(`${c.name}: told what is wrong, corrected, the executor's form is written; tokens of both requests charged`, async () => {
      const title = `Reparatur ${c.name}`;
      const seen: LlmRequest[] = [];
      llm.setScript((req) => {
        if (!promptMentions(req, title)) return { content: planAnswer('ok', []) };
        seen.push(req);
        return { content: planAnswer('Plan', [step(isRepair(req) ? c.fixed : c.drifted)]), usage: { total_tokens: isRepair(req) ? 70 : 100 } };
      });
      const id = `rep-${c.name}`;
      await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(Date.now() + 50) }) });
      const ev = await runOf(daemon, id);
      assert.equal(seen.length, 2, 'asked once more in the same run');
      assert.ok(seen[1]!.body.messages.at(-1)!.content.includes(c.problem), `the repair names the problem: ${seen[1]!.body.messages.at(-1)!.content}`);
      assert.equal(seen[1]!.body.messages.at(-2)!.role, 'assistant', 'the first answer goes back as the assistant\'s');
      assert.equal(ev.outcome, 'planned');
      assert.deepEqual(ev.iteration!.plan.map((s) => s.intent), [{ kind: 'toolCall', toolName: c.fixed.toolName, params: c.fixed.params }]);
      const { rows } = await db.pool.query(`SELECT sum(tokens_used)::int AS n FROM mana_ai.token_usage WHERE mission_id = $1`, [id]);
      assert.equal(rows[0].n, 170, 'both requests charged as one run');
    });
  }

  it('a model that repeats the drifted forms: no such step is written, the valid one is, and the summary says what was left out', async () => {
    const title = 'Reparatur stur';
    let asked = 0;
    llm.setScript((req) => {
      if (!promptMentions(req, title)) return { content: planAnswer('ok', []) };
      asked += 1;
      return { content: planAnswer('Wochenplan', [step({ toolName: 'create_task', params: { title: 'Einkaufen' } }), ...CASES.map((c) => step(c.drifted))]) };
    });
    await pushChange(db.pool, { userId: 'u-stur', recordId: 'stur', op: 'insert', data: webappMission({ id: 'stur', title, nextRunAt: iso(Date.now() + 50) }) });
    const ev = await runOf(daemon, 'stur');
    assert.equal(asked, 2);
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(ev.iteration!.plan.map((s) => s.intent), [{ kind: 'toolCall', toolName: 'create_task', params: { title: 'Einkaufen' } }]);
    assert.match(ev.iteration!.summary, /^Wochenplan \(5 Vorschläge wurden weggelassen.*complete_tasks_by_title, create_event, create_place, visit_place, undo_drink\)$/);
    const rejected = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_plan_steps_rejected_total');
    assert.match(rejected, /reason="unknown-tool",service="mana-ai"\} [2-9]/);
    assert.match(rejected, /reason="missing-required",service="mana-ai"\} [3-9]/);
  });
});
