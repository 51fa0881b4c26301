// Deep research through the real daemon (issue 31), with a mana-research
// stand-in the test controls: one job per (mission, due time); the run
// waits for it without a claim and is woken when it ends; the answer is
// used and never paid for again, also after a failed plan (the next due
// time uses the kept answer); a job that never finishes is abandoned at the
// maximum age and the run planned without it; a refused submit plans at
// once without sources; a paused mission abandons its job; the next due
// time's job is submitted ahead of it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { startResearchServer, type ResearchServer } from './harness/research-server.js';
import { eventually } from './harness/wait.js';
import { pushAgent } from './harness/agents.js';
import type { RunEvent } from '../src/reactor/reactor.js';

let db: TestDb;
let llm: LlmServer;
let research: ResearchServer;
let daemon: TestDaemon;
let failFirstB = true;

const MAX_AGE_MS = 4_000;
const env = (lead: number) => ({
  MANA_RESEARCH_URL: research.url, MANA_AI_DEEP_RESEARCH_ENABLED: 'true', MANA_AI_DEEP_RESEARCH_POLL_MS: '50',
  MANA_AI_DEEP_RESEARCH_MAX_AGE_MS: String(MAX_AGE_MS), MANA_AI_DEEP_RESEARCH_LEAD_MS: String(lead),
  // a mission due again at once runs at once (the kept-answer case)
  MANA_AI_MIN_RUN_GAP_MS: '0',
});

before(async () => {
  db = await createTestDatabase();
  research = await startResearchServer((q) => (q.includes('nie fertig') ? 'never' : q.includes('ohne Guthaben') ? 'credits' : 'held'));
  llm = await startLlmServer((req) => {
    if (promptMentions(req, 'Titel d-kept') && failFirstB) {
      failFirstB = false;
      return { content: 'kein Plan, nur Text' };
    }
    return { content: planAnswer('Plan') };
  });
  daemon = await startTestDaemon(db.daemonUrl, llm.url, env(0));
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await research?.close();
  await db?.drop();
});

const mission = (id: string, query: string, over: Record<string, unknown> = {}) =>
  pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: `Titel ${id}`, nextRunAt: new Date(Date.now() - 1000).toISOString(), research: { mode: 'deep', query }, ...over }) });
const jobs = async (id: string) =>
  (await db.pool.query<{ status: string; due_at: Date }>(`SELECT status, due_at FROM mana_ai.research_jobs WHERE mission_id = $1 ORDER BY id`, [id])).rows;
const runOutcome = (d: TestDaemon, id: string, outcome: string, timeoutMs = 30_000) =>
  Promise.race([
    d.waitForRun((e: RunEvent) => e.missionId === id && e.outcome === outcome),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no ${outcome} run of ${id}`)), timeoutMs).unref()),
  ]);
const promptsOf = (title: string) => llm.requests.filter((r) => promptMentions(r, title)).map((r) => r.body.messages.map((m) => m.content).join('\n'));

describe('deep research (issue 31)', () => {
  it('submits one job, waits for it without a claim, is woken when it ends, and uses its answer once', async () => {
    await mission('d-once', 'Tiefenfrage A');
    await runOutcome(daemon, 'd-once', 'waiting');
    const runs = (await db.pool.query(`SELECT status, attempts, error FROM mana_ai.mission_runs WHERE mission_id = 'd-once'`)).rows;
    assert.deepEqual(runs, [{ status: 'released', attempts: 0, error: 'research-pending' }], 'no claim is held while it waits');
    assert.equal(llm.requests.filter((r) => promptMentions(r, 'Titel d-once')).length, 0, 'the LLM is not asked yet');
    research.complete('Tiefenfrage A');
    const planned = await runOutcome(daemon, 'd-once', 'planned');
    assert.ok(planned.iteration);
    assert.deepEqual(research.submits.filter((s) => s.query === 'Tiefenfrage A').map((s) => ({ userId: s.userId, key: s.serviceKey })), [{ userId: 'u-d-once', key: SERVICE_KEY }], 'one submit, as the owner, with the service key');
    const prompt = promptsOf('Titel d-once')[0]!;
    assert.match(prompt, /Deep-Research zu „Tiefenfrage A“ \(2 Quellen, Text aus dem Web, nicht vom Nutzer\): <<<WEBQUELLEN\n# Deep-Research: Tiefenfrage A\nAntwort der Tiefenrecherche zu Tiefenfrage A\./);
    assert.ok(prompt.includes('URL: https://quelle.example/2') && !prompt.includes('javascript:'), 'http(s) citations only');
    assert.ok(!prompt.includes('xxxxxxxxxx'), 'no providerRaw');
    assert.deepEqual((await jobs('d-once')).map((j) => j.status), ['used']);
    const rows = (await db.pool.query(`SELECT kind, outcome, jsonb_array_length(sources) AS n FROM mana_ai.research_runs WHERE mission_id = 'd-once'`)).rows;
    assert.deepEqual(rows, [{ kind: 'deep', outcome: 'ok', n: 2 }], 'the run\'s sources, for the user to read');
  });

  it('a failed plan pays nothing again: the next due time uses the kept answer', async () => {
    await mission('d-kept', 'Tiefenfrage B');
    await runOutcome(daemon, 'd-kept', 'waiting');
    research.complete('Tiefenfrage B');
    await runOutcome(daemon, 'd-kept', 'failed');
    assert.deepEqual((await jobs('d-kept')).map((j) => j.status), ['completed'], 'kept: no planned iteration used it');
    // due again at once (as the user or the next cadence would make it)
    await pushChange(db.pool, { userId: 'u-d-kept', recordId: 'd-kept', op: 'update', data: { nextRunAt: new Date(Date.now() - 500).toISOString() }, fieldTimestamps: { nextRunAt: new Date(Date.now() + 5_000).toISOString() } });
    await runOutcome(daemon, 'd-kept', 'planned');
    assert.equal(research.submits.filter((s) => s.query === 'Tiefenfrage B').length, 1, 'one submit for both due times');
    assert.deepEqual((await jobs('d-kept')).map((j) => j.status), ['used']);
    assert.ok(promptsOf('Titel d-kept').at(-1)!.includes('Antwort der Tiefenrecherche zu Tiefenfrage B.'));
  });

  it('a failed write-back pays nothing again: the retry writes the kept plan and the answer is then used', async () => {
    await mission('d-wb', 'Tiefenfrage E');
    await runOutcome(daemon, 'd-wb', 'waiting');
    const sid = (await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'd-wb'`)).rows[0].sid;
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM mana_ai.mission_snapshots WHERE sid = $1 FOR UPDATE', [sid]);
    try {
      research.complete('Tiefenfrage E');
      let pids: number[] = [];
      await eventually(async () => (pids = (await db.pool.query(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai' AND wait_event_type = 'Lock'`)).rows.map((r) => Number(r.pid))).length === 1,
        'the write-back waits for the snapshot lock');
      await db.pool.query('SELECT pg_terminate_backend($1)', [pids[0]]);
      await runOutcome(daemon, 'd-wb', 'retry');
    } finally {
      await holder.query('COMMIT');
      holder.release();
    }
    await runOutcome(daemon, 'd-wb', 'planned');
    assert.equal(research.submits.filter((s) => s.query === 'Tiefenfrage E').length, 1, 'one submit');
    assert.equal(llm.requests.filter((r) => promptMentions(r, 'Titel d-wb')).length, 1, 'the LLM asked once: the retry wrote the kept plan');
    assert.deepEqual((await jobs('d-wb')).map((j) => j.status), ['used'], 'the answer the written plan used is used');
  });

  it('counts a mission\'s jobs for its agent', async () => {
    await pushAgent(db.pool, 'u-d-agent', 'agent-tief');
    await mission('d-agent', 'Tiefenfrage F', { agentId: 'agent-tief' });
    research.complete('Tiefenfrage F');
    await runOutcome(daemon, 'd-agent', 'planned');
    const row = (await db.pool.query(`SELECT research_jobs_24h FROM mana_ai.agent_budget WHERE agent_id = 'agent-tief'`)).rows[0];
    assert.deepEqual(row, { research_jobs_24h: 1 });
    const job = (await db.pool.query(`SELECT agent_id FROM mana_ai.research_jobs WHERE mission_id = 'd-agent'`)).rows;
    assert.deepEqual(job, [{ agent_id: 'agent-tief' }]);
  });

  it('a job that never finishes is abandoned at the maximum age; a refused submit plans at once; both say there are no sources', async () => {
    await mission('d-never', 'nie fertig');
    await mission('d-credits', 'ohne Guthaben');
    const credits = await runOutcome(daemon, 'd-credits', 'planned');
    assert.ok(credits.iteration);
    assert.deepEqual((await jobs('d-credits')).map((j) => j.status), ['failed']);
    await runOutcome(daemon, 'd-never', 'waiting');
    await runOutcome(daemon, 'd-never', 'planned', MAX_AGE_MS + 20_000);
    assert.deepEqual((await jobs('d-never')).map((j) => j.status), ['abandoned']);
    assert.match(promptsOf('Titel d-never')[0]!, /keine echten Quellen \(die Recherche kam nicht rechtzeitig zurück\)/);
    assert.match(promptsOf('Titel d-credits')[0]!, /keine echten Quellen \(die Suche ist fehlgeschlagen\)/);
    const m = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_research_total');
    assert.match(m, /kind="deep",outcome="abandoned",service="mana-ai"\} 1/);
    const failed = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_research_jobs_failed_total');
    assert.match(failed, /provider="gemini-deep-research",service="mana-ai"\} 1/);
  });

  it('a mission paused while its job runs abandons the job, and no answer is waited for', async () => {
    await mission('d-paused', 'Tiefenfrage D');
    await runOutcome(daemon, 'd-paused', 'waiting');
    await pushChange(db.pool, { userId: 'u-d-paused', recordId: 'd-paused', op: 'update', data: { state: 'paused' }, fieldTimestamps: { state: new Date(Date.now() + 5_000).toISOString() } });
    await eventually(async () => (await jobs('d-paused'))[0]?.status === 'abandoned', 'the pending job is abandoned at its next poll');
    assert.equal(research.submits.filter((s) => s.query === 'Tiefenfrage D').length, 1);
  });

  it('a mission whose question changed while its job ran abandons that job and is planned without its answer', async () => {
    await mission('d-changed', 'Tiefenfrage G');
    await runOutcome(daemon, 'd-changed', 'waiting');
    await pushChange(db.pool, { userId: 'u-d-changed', recordId: 'd-changed', op: 'update', data: { research: { mode: 'deep', query: 'Tiefenfrage G, anders' } }, fieldTimestamps: { research: new Date(Date.now() + 5_000).toISOString() } });
    research.complete('Tiefenfrage G');
    await runOutcome(daemon, 'd-changed', 'planned');
    assert.deepEqual((await jobs('d-changed')).map((j) => j.status), ['abandoned']);
    assert.ok(!promptsOf('Titel d-changed')[0]!.includes('Antwort der Tiefenrecherche'), 'not the old question\'s answer');
  });

  it('submits the next due time\'s job ahead of it, so that run starts with its answer', async () => {
    await daemon.stop();
    // the lead is longer than the cadence: the next due time's job goes out right after the run
    daemon = await startTestDaemon(db.daemonUrl, llm.url, env(2 * 3_600_000));
    await mission('d-ahead', 'Tiefenfrage C');
    await runOutcome(daemon, 'd-ahead', 'waiting');
    research.complete('Tiefenfrage C');
    await runOutcome(daemon, 'd-ahead', 'planned');
    const next = (await db.pool.query<{ next_run_at: Date }>(`SELECT next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = 'd-ahead'`)).rows[0]!.next_run_at;
    await eventually(async () => (await jobs('d-ahead')).length === 2, 'the next due time\'s job is submitted');
    const [, ahead] = await jobs('d-ahead');
    assert.equal(ahead!.due_at.getTime(), next.getTime(), 'for the next due time, an hour ahead of it');
    assert.equal(research.submits.filter((s) => s.query === 'Tiefenfrage C').length, 2);
    // its answer arrives long before its due time, and the mission is not run early for it
    await eventually(async () => (await jobs('d-ahead'))[1]?.status === 'completed', 'the ahead job completes');
    const late = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id = 'd-ahead'`);
    assert.equal(late.rows[0].n, 1, 'one run so far: the next one waits for its due time');
    assert.equal(daemon.events.filter((e) => e.missionId === 'd-ahead' && e.outcome === 'planned').length, 1);
  });
});
