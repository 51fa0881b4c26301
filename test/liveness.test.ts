// An active mission always has a future (issue 18, items 2 and 3): a
// connection that dies inside a write-back does not take the daemon down,
// and a write-back that fails for a reason outside the mission (a lost
// connection, a lock timeout, a revoked right) gives the claim back and is
// tried again with backoff, instead of ending the mission's schedule.
// Every interleaving is forced: the test holds the snapshot row lock while
// the write-back waits for it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { RUNTIME_ROLE, createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { holdAnswers, planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  // Every connection of the daemon gives up on a lock after 3 s (what an
  // operator's lock_timeout does), so a held snapshot lock fails its write-back.
  await db.pool.query(`ALTER ROLE ${RUNTIME_ROLE} IN DATABASE ${db.name} SET lock_timeout = '3s'`);
  llm = await startLlmServer();
  // retries after 1-2 s: long enough to see the claim given back before the retry takes it
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_RUN_RETRY_BASE_MS: '2000' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

async function sidOf(missionId: string): Promise<number> {
  return Number((await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [missionId])).rows[0].sid);
}

/** Holds the snapshot row lock of a mission (as the trigger and the write-back take it) until released. */
async function holdSnapshotLock(sid: number): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: db.url, application_name: 'lock-holder' });
  await c.connect();
  await c.query('BEGIN');
  await c.query('SELECT 1 FROM mana_ai.mission_snapshots WHERE sid = $1 FOR UPDATE', [sid]);
  return {
    async release() {
      await c.query('ROLLBACK');
      await c.end();
    },
  };
}

const writeBackWaiting = async () =>
  (await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai' AND wait_event_type = 'Lock'`)).rows.map((r) => Number(r.pid));

describe('liveness', () => {
  it('a backend terminated inside the write-back: the daemon lives on, the claim is given back and the run is written on the retry', async () => {
    const title = 'Verbindung weg';
    const held = holdAnswers(llm, (req) => promptMentions(req, title));
    await pushChange(db.pool, { userId: 'u-term', recordId: 'term', op: 'insert', data: webappMission({ id: 'term', title, nextRunAt: iso(Date.now() + 100) }) });
    await held.asked;
    const lock = await holdSnapshotLock(await sidOf('term'));
    let pid: number[] = [];
    try {
      held.release();
      // Killed while it waits (lock_timeout would end the wait after 3 s).
      await eventually(async () => (pid = await writeBackWaiting()).length === 1, 'the write-back waits for the snapshot lock');
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid[0]]);
      const first = await runOf(daemon, 'term');
      assert.equal(first.outcome, 'retry', `first attempt: ${first.outcome} ${first.error ?? ''}`);
      const runs = (await db.pool.query(`SELECT status, attempts, claimed_by FROM mana_ai.mission_runs WHERE mission_id = 'term'`)).rows;
      assert.deepEqual(runs, [{ status: 'released', attempts: 1, claimed_by: null }], 'the claim is given back');
    } finally {
      await lock.release();
    }
    const second = await runOf(daemon, 'term', 30_000).then(() => daemon.waitForRun((e) => e.missionId === 'term' && e.outcome !== 'retry'));
    assert.equal(second.outcome, 'planned');
    const runs = (await db.pool.query(`SELECT status, attempts FROM mana_ai.mission_runs WHERE mission_id = 'term'`)).rows;
    assert.deepEqual(runs, [{ status: 'done', attempts: 2 }]);
    assert.equal(llm.requests.filter((r) => promptMentions(r, title)).length, 1, 'asked once: the retry wrote the kept plan');
    const pending = (await db.pool.query(`SELECT pending_plan FROM mana_ai.mission_runs WHERE mission_id = 'term'`)).rows[0].pending_plan;
    assert.equal(pending, null, 'the kept plan is cleared once written');
    const snap = (await db.pool.query(`SELECT next_run_at, jsonb_array_length(record->'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = 'term'`)).rows[0];
    assert.equal(snap.n, 1, 'one iteration written');
    assert.ok(snap.next_run_at.getTime() > Date.now() + 50 * 60_000, 'the next run is an hour later');
    const errors = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_run_retries_total');
    assert.match(errors, /reason="connection",service="mana-ai"\} 1/);
    const lost = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_db_connection_errors_total');
    assert.match(lost, /\} [1-9]/, 'the lost connection was seen by its client listener');
  });

  it('a write-back that hits lock_timeout is retried after a backoff, not ended for good', async () => {
    const title = 'Sperre';
    const held = holdAnswers(llm, (req) => promptMentions(req, title));
    await pushChange(db.pool, { userId: 'u-lock', recordId: 'locked', op: 'insert', data: webappMission({ id: 'locked', title, cadence: { kind: 'interval', everyMinutes: 1 }, nextRunAt: iso(Date.now() + 100) }) });
    await held.asked;
    const lock = await holdSnapshotLock(await sidOf('locked'));
    try {
      held.release();
      const first = await runOf(daemon, 'locked');
      assert.equal(first.outcome, 'retry');
      assert.match(first.error ?? '', /lock timeout/);
    } finally {
      await lock.release();
    }
    const second = await daemon.waitForRun((e) => e.missionId === 'locked' && e.outcome !== 'retry');
    assert.equal(second.outcome, 'planned');
    assert.equal(llm.requests.filter((r) => promptMentions(r, title)).length, 1, 'the retry writes the plan the first attempt made (sql/migrations/020_baseline.sql): the LLM is asked once');
    const snap = (await db.pool.query(`SELECT next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = 'locked'`)).rows[0];
    assert.ok(snap.next_run_at.getTime() > Date.now(), 'the every-minute mission has its next due time');
  });

  it('a right revoked mid-run: the claim goes back; once it is granted again the run is written', async () => {
    const title = 'Abgelehnt';
    const held = holdAnswers(llm, (req) => promptMentions(req, title));
    await pushChange(db.pool, { userId: 'u-rev', recordId: 'refused', op: 'insert', data: webappMission({ id: 'refused', title, nextRunAt: iso(Date.now() + 100) }) });
    await held.asked;
    await db.pool.query(`REVOKE INSERT ON sync_changes FROM ${RUNTIME_ROLE}`);
    try {
      held.release();
      const ev = await runOf(daemon, 'refused');
      assert.equal(ev.outcome, 'retry');
      assert.match(ev.error ?? '', /permission denied/);
      const runs = (await db.pool.query(`SELECT status, error FROM mana_ai.mission_runs WHERE mission_id = 'refused'`)).rows;
      assert.equal(runs[0].status, 'released');
      assert.match(runs[0].error, /^retry: .*permission denied/);
    } finally {
      await db.pool.query(`GRANT INSERT ON sync_changes TO ${RUNTIME_ROLE}`);
    }
    const done = await daemon.waitForRun((e) => e.missionId === 'refused' && e.outcome !== 'retry');
    assert.equal(done.outcome, 'planned');
    assert.equal(llm.requests.filter((r) => promptMentions(r, title)).length, 1);
  });

  it('a failure of the mission itself writes a failed iteration together with the next due time', async () => {
    // The model's summary holds a NUL character, which jsonb refuses (22P05):
    // the write-back of this plan can never succeed, whatever is retried.
    const title = 'Nullzeichen';
    llm.setScript((req) => ({ content: promptMentions(req, title) ? planAnswer('kaputt \u0000 hier', []) : planAnswer('ok', []) }));
    await pushChange(db.pool, { userId: 'u-bad', recordId: 'bad', op: 'insert', data: webappMission({ id: 'bad', title, nextRunAt: iso(Date.now() + 100) }) });
    const ev = await runOf(daemon, 'bad');
    assert.equal(ev.outcome, 'failed');
    assert.ok(typeof ev.nextRunAtMs === 'number' && ev.nextRunAtMs > Date.now(), `a next due time was written: ${ev.error}`);
    const snap = (await db.pool.query(`SELECT next_run_at, record->'iterations'->0->>'overallStatus' AS s FROM mana_ai.mission_snapshots WHERE mission_id = 'bad'`)).rows[0];
    assert.equal(snap.s, 'failed');
    assert.ok(snap.next_run_at.getTime() > Date.now());
    assert.equal(llm.requests.filter((r) => promptMentions(r, title)).length, 1, 'not asked again for this due time');
  });
});
