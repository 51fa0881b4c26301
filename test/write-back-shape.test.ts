// The write-back each webapp generation reads (CONTRACT.md sections 5 and
// 11, issue 19): the actor of a run without an agent, `updatedAt` in the
// row's data, the model's sentence as each step's summary, and the prompt
// version on the iteration and in mission_runs.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FIELD_MAP, MERGE_RULE, SYNC_SCHEMA, createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon } from './harness/daemon.js';

let db: TestDb;
let llm: LlmServer;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

async function runUnder(generation: 'v0.4' | 'head', id: string, step: { toolName: string; params: Record<string, unknown> }, extra: Record<string, unknown> = {}) {
  const daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WEBAPP: generation, MANA_AI_WORKER_ID: `shape-${generation}` });
  try {
    const title = `Form ${id}`;
    llm.setScript((req) => ({ content: promptMentions(req, title) ? planAnswer('Plan für heute', [{ summary: 'Eine Notiz mit den Ideen der Woche anlegen.', ...step, rationale: 'damit nichts verloren geht' }]) : planAnswer('ok', []) }));
    await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title, objective: 'Ideen sammeln', nextRunAt: iso(Date.now() + 50), ...extra }) });
    const ev = await runOf(daemon, id);
    const row = (await db.pool.query(`SELECT *, ${FIELD_MAP} AS field_timestamps FROM sync_changes WHERE record_id = $1 AND client_id = 'mana-ai-runner'`, [id])).rows[0];
    const run = (await db.pool.query(`SELECT prompt_version FROM mana_ai.mission_runs WHERE mission_id = $1`, [id])).rows[0];
    const health = (await fetch(`http://127.0.0.1:${daemon.port}/health`).then((r) => r.json())) as { webapp: string; mergeRule: string };
    return { ev, row, run, health, logs: daemon.logs };
  } finally {
    await daemon.stop();
  }
}

describe('write-back per generation', () => {
  it('v0.4: the system actor, updatedAt in data, the model\'s sentence per step, the prompt version recorded', async () => {
    const { ev, row, run } = await runUnder('v0.4', 'shape-v04', { toolName: 'create_task', params: { title: 'Ideen' } });
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(row.actor, { kind: 'system', source: 'mission-runner' });
    assert.equal(typeof row.data.updatedAt, 'string');
    assert.deepEqual(Object.keys(row.field_timestamps).sort(), Object.keys(row.data).sort());
    const it = row.data.iterations.at(-1);
    assert.equal(it.plan[0].summary, 'Eine Notiz mit den Ideen der Woche anlegen.');
    assert.match(it.promptVersion, /^[0-9a-f]{12}$/);
    assert.equal(run.prompt_version, it.promptVersion);
  });

  it('head: the legacy AI actor, no updatedAt, a HEAD-only tool accepted, another prompt version', async () => {
    const v04 = (await db.pool.query(`SELECT prompt_version FROM mana_ai.mission_runs WHERE mission_id = 'shape-v04'`)).rows[0].prompt_version;
    const { ev, row, run, health, logs } = await runUnder('head', 'shape-head', { toolName: 'create_note', params: { title: 'Ideen', content: '- eins' } });
    // The runtime role may not change the database's merge rule: it starts anyway and says what to run.
    assert.deepEqual([health.webapp, health.mergeRule], ['head', MERGE_RULE]);
    if (MERGE_RULE !== 'head') assert.ok(logs.some((l) => l.includes('npm run migrate -- --webapp head')), 'the mismatch is logged with the command');
    assert.equal(ev.outcome, 'planned');
    const it = row.data.iterations.at(-1);
    assert.deepEqual(row.actor, { kind: 'ai', principalId: 'legacy:ai-default', displayName: 'Mana', missionId: 'shape-head', iterationId: it.id, rationale: 'Ideen sammeln' });
    assert.equal('updatedAt' in row.data, false, 'HEAD derives updatedAt from the field timestamps');
    assert.deepEqual(Object.keys(row.field_timestamps).sort(), Object.keys(row.data).sort());
    assert.deepEqual(it.plan.map((s: { intent: unknown }) => s.intent), [{ kind: 'toolCall', toolName: 'create_note', params: { title: 'Ideen', content: '- eins' } }]);
    assert.equal(it.plan[0].status, 'planned', 'HEAD runs exactly the planned steps');
    assert.match(it.promptVersion, /^[0-9a-f]{12}$/);
    assert.notEqual(it.promptVersion, v04, 'another catalog, another version');
    assert.equal(run.prompt_version, it.promptVersion);
  });

  it(`the table's own columns (${SYNC_SCHEMA} schema): the per-field map under its name; origin 'agent' where the column exists, and no space taken from the mission's data`, async () => {
    const { ev, row } = await runUnder('v0.4', 'shape-space', { toolName: 'create_task', params: { title: 'Ideen' } }, { spaceId: 'space-7' });
    assert.equal(ev.outcome, 'planned');
    assert.deepEqual(Object.keys(row[FIELD_MAP]).sort(), Object.keys(row.data).sort());
    if (SYNC_SCHEMA === 'head') {
      assert.equal(row.origin, 'agent');
      // a spaceId in the data is a free field: mana-sync stored no space for this mission and no membership says so (issue 27, item 3; test/record-scope.test.ts has the stored space)
      assert.equal(row.space_id, null, 'never written into a space named only by the data');
    } else {
      assert.equal('origin' in row || 'space_id' in row || 'field_meta' in row, false, "the seed's table has none of today's columns");
    }
  });
});
