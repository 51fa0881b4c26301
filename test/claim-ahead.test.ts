// Claiming ahead of a planning slot (issue 30): a run claims first and then
// takes one of MANA_AI_CONCURRENCY planning slots, so a freed slot goes to a
// run whose claim is already answered. The LLM's load stays bounded by the
// slots; a claimed run that waits for one longer than its lease allows
// (half of what the lease leaves beyond the worst case of one run) gives
// its claim back uncounted and is planned later, once.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { worstCaseOfRunMs } from '../src/config.js';
import { CLAIMS_PER_SLOT, WRITING_PER_SLOT } from '../src/reactor/run-dispatcher.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { holdAnswers, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

const iso = (ms: number) => new Date(ms).toISOString();
/** What the harness's daemon takes as the worst case of one run (MANA_AI_LLM_TIMEOUT_MS 5000, 4 attempts, text mode). */
const WORST_CASE_RUN_MS = worstCaseOfRunMs({ maxAttempts: 4, timeoutMs: 5000, plannerMode: 'text' });

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon | undefined;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});
after(async () => {
  await llm?.close();
  await db?.drop();
});

const runRow = async (missionId: string) =>
  (await db.pool.query(`SELECT status, attempts, error FROM mana_ai.mission_runs WHERE mission_id = $1`, [missionId])).rows[0] as { status: string; attempts: number; error: string | null } | undefined;
const asked = (title: string) => llm.requests.filter((r) => promptMentions(r, title)).length;

describe('claim ahead of a planning slot (issue 30)', () => {
  it('with one slot busy, the next due run is claimed but does not reach the LLM until the slot is free', async () => {
    daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '1' });
    const hold = holdAnswers(llm, (r) => promptMentions(r, 'Vorne'));
    await pushChange(db.pool, { userId: 'u-ahead-a', recordId: 'ahead-a', op: 'insert', data: webappMission({ id: 'ahead-a', title: 'Vorne', nextRunAt: iso(Date.now() - 1000) }) });
    await hold.asked;
    await pushChange(db.pool, { userId: 'u-ahead-b', recordId: 'ahead-b', op: 'insert', data: webappMission({ id: 'ahead-b', title: 'Dahinter', nextRunAt: iso(Date.now() - 1000) }) });
    // B's claim is answered while A holds the only slot
    await eventually(async () => (await runRow('ahead-b'))?.status === 'running', 'B claimed while A plans');
    assert.equal(asked('Dahinter'), 0, 'B has not reached the LLM: the slot is A\'s');
    hold.release();
    const a = await runOf(daemon, 'ahead-a');
    const b = await runOf(daemon, 'ahead-b');
    assert.equal(a.outcome, 'planned');
    assert.equal(b.outcome, 'planned');
    assert.equal(asked('Dahinter'), 1);
    assert.deepEqual(await runRow('ahead-b'), { status: 'done', attempts: 1, error: null });
    // its start says how long the claim took and how long it then waited for the slot
    const started = daemon.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['missionId'] === 'ahead-b' && l['msg'] === 'run started');
    assert.ok(started && typeof started['claimMs'] === 'number' && (started['slotWaitMs'] as number) >= 1, JSON.stringify(started));
  });

  it('a claimed run that waits for a slot longer than the lease allows gives its claim back uncounted and is planned once later', async () => {
    // the lease leaves 1 s beyond the worst case of one run: a claimed run waits at most 0.5 s for a slot
    daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '1', MANA_AI_CLAIM_LEASE_MS: String(WORST_CASE_RUN_MS + 1000) });
    const hold = holdAnswers(llm, (r) => promptMentions(r, 'Langsam'));
    await pushChange(db.pool, { userId: 'u-wait-a', recordId: 'wait-a', op: 'insert', data: webappMission({ id: 'wait-a', title: 'Langsam', nextRunAt: iso(Date.now() - 1000) }) });
    await hold.asked;
    await pushChange(db.pool, { userId: 'u-wait-b', recordId: 'wait-b', op: 'insert', data: webappMission({ id: 'wait-b', title: 'Wartet', nextRunAt: iso(Date.now() - 1000) }) });
    // B is claimed, waits past 0.5 s, and hands its claim back without counting the attempt
    await eventually(async () => {
      const r = await runRow('wait-b');
      return r?.status === 'released' && r.error === 'slot-wait';
    }, "B's claim given back after waiting for the slot");
    assert.equal((await runRow('wait-b'))!.attempts, 0, 'the wait is not an attempt');
    const sidB = await runOfSid('wait-b');
    assert.ok(daemon.logs.some((l) => l.includes('waited too long for a planning slot') && l.includes(`"sid":${sidB}`)), 'the give-back is logged with the run');
    assert.equal(asked('Wartet'), 0);
    assert.match(await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text(), /mana_ai_run_retries_total\{reason="slot-wait"[^}]*\} 1\b/);
    hold.release();
    const b = await runOf(daemon, 'wait-b', 20_000);
    assert.equal(b.outcome, 'planned');
    assert.equal(asked('Wartet'), 1, 'asked once');
    assert.deepEqual(await runRow('wait-b'), { status: 'done', attempts: 1, error: null });
    const iterations = (await db.pool.query(`SELECT jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = 'wait-b'`)).rows[0].n;
    assert.equal(iterations, 1);
  });

  it('while the write-backs cannot commit, runs are claimed and planned only up to the in-flight bound; the rest wait in the queue, unclaimed, and all run once the database takes writes again', async () => {
    // one slot: in flight at most 1 × (1 + CLAIMS_PER_SLOT + WRITING_PER_SLOT) runs
    const bound = 1 + CLAIMS_PER_SLOT + WRITING_PER_SLOT;
    const total = bound + 6;
    daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '1' });
    const gauge = async (name: 'runsInFlight' | 'runsQueued') => (await daemon!.metrics[name].get()).values[0]?.value ?? 0;
    const ids = Array.from({ length: total }, (_, i) => `bound-${String(i).padStart(2, '0')}`);
    // the first answer is held until the lock below is taken, so no write-back commits before it
    const hold = holdAnswers(llm, (r) => promptMentions(r, 'Schranke'));
    const due = iso(Date.now() - 1000);
    for (const id of ids) {
      await pushChange(db.pool, { userId: `u-${id}`, recordId: id, op: 'insert', data: webappMission({ id, title: `Schranke ${id}`, nextRunAt: due }) });
    }
    await hold.asked;
    // mana-sync's table refuses the write-backs' row-exclusive lock until this transaction ends
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE sync_changes IN SHARE MODE');
      hold.release();
      await eventually(async () => (await gauge('runsInFlight')) === bound && asked('Schranke') === bound,
        'the in-flight bound reached, every run in it planned');
      assert.equal(await gauge('runsQueued'), total - bound, 'the rest wait in the queue');
      const claimed = Number((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE mission_id LIKE 'bound-%'`)).rows[0].n);
      assert.equal(claimed, bound, 'no run beyond the bound is claimed');
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    for (const id of ids) assert.equal((await runOf(daemon, id, 30_000)).outcome, 'planned', id);
    for (const id of ids) assert.equal(asked(`Schranke ${id}`), 1, `${id} asked once`);
  });
});

async function runOfSid(missionId: string): Promise<number> {
  return Number((await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [missionId])).rows[0].sid);
}
