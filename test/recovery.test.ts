// Crash recovery with real processes: a daemon SIGKILLed after the LLM
// answered but before its write-back committed leads to exactly one
// iteration for that due time (the next daemon re-runs the claim at once:
// the claim's witness, the killed daemon's session, is gone; the default
// lease is not waited for); one killed after the write-back committed leads
// to no second one.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { iterationIdFor } from '../src/write-back/iteration.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY } from './harness/daemon.js';
import { spawnDaemon, type DaemonProcess } from './harness/daemon-process.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
const started: DaemonProcess[] = [];


before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const d of started) d.kill('SIGKILL');
  await Promise.all(started.map((d) => d.exited));
  await llm?.close();
  await db?.drop();
});

const spawn = async (name: string) => {
  const d = await spawnDaemon(name, db.daemonUrl, llm.url);
  started.push(d);
  return d;
};

const runnerRows = async (id: string) =>
  (await db.pool.query(`SELECT data FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = $1`, [id])).rows;

it('killed after the LLM answered, before the write-back committed: the next daemon runs that due time exactly once', async () => {
  const blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
  llm.setScript(async (req) => {
    if (req.body.messages[1]!.content.includes('\nmid\n')) {
      // Hold the run's row so the write-back (which updates it first) blocks.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM mana_ai.mission_runs WHERE mission_id = 'mid' FOR UPDATE`);
    }
    return { content: planAnswer('nach dem Absturz') };
  });
  const first = await spawn('first');
  const due = Date.now() + 200;
  await pushChange(db.pool, { userId: 'u-mid', recordId: 'mid', op: 'insert', data: webappMission({ id: 'mid', title: 'mid', nextRunAt: new Date(due).toISOString() }) });
  await eventually(
    async () => (await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai' AND wait_event_type = 'Lock'`)).rowCount === 1,
    'the write-back waits on the held row',
  );
  first.kill('SIGKILL');
  await first.exited;
  await blocker.query('ROLLBACK');
  await blocker.end();
  // The killed daemon's backends end. The write-back is one statement on
  // the server (issue 30: mana_ai.write_back_runs), so one already running
  // when its client died either finishes and commits on its own (then it is
  // this due time's one write: the run is done, the next daemon finds it
  // finished) or never commits; it never half-writes and never writes twice.
  await eventually(async () => (await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai'`)).rowCount === 0, 'the killed daemon’s backends end');
  const byFirst = (await runnerRows('mid')).length;
  assert.ok(byFirst <= 1, 'at most the one iteration of that due time');
  const stale = await db.pool.query(`SELECT status, attempts, claimed_by FROM mana_ai.mission_runs WHERE mission_id = 'mid'`);
  assert.deepEqual(stale.rows, [byFirst === 1 ? { status: 'done', attempts: 1, claimed_by: 'first' } : { status: 'running', attempts: 1, claimed_by: 'first' }]);

  llm.setScript(() => ({ content: planAnswer('nach dem Absturz') }));
  const second = await spawn('second');
  if (byFirst === 0) await second.waitForLog((l) => l.msg === 'run written back' && l['missionId'] === 'mid');
  else await eventually(async () => (await db.pool.query(`SELECT 1 FROM mana_ai.mission_runs WHERE mission_id = 'mid' AND status = 'done'`)).rowCount === 1, 'the run is done');
  const rows = await runnerRows('mid');
  assert.equal(rows.length, 1, 'exactly one iteration');
  assert.equal(rows[0].data.iterations.at(-1).id, iterationIdFor('u-mid', 'mid', due));
  const run = await db.pool.query(`SELECT status, attempts, claimed_by FROM mana_ai.mission_runs WHERE mission_id = 'mid'`);
  assert.deepEqual(run.rows, [byFirst === 1 ? { status: 'done', attempts: 1, claimed_by: 'first' } : { status: 'done', attempts: 2, claimed_by: 'second' }],
    'the same run: written by the first daemon\'s last statement, or claimed again because its daemon’s session is gone');
  second.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});

it('killed right after the write-back committed: no second iteration for that due time', async () => {
  const third = await spawn('third');
  const due = Date.now() + 200;
  await pushChange(db.pool, { userId: 'u-post', recordId: 'post', op: 'insert', data: webappMission({ id: 'post', title: 'post', nextRunAt: new Date(due).toISOString() }) });
  await third.waitForLog((l) => l.msg === 'run written back' && l['missionId'] === 'post');
  third.kill('SIGKILL');
  await third.exited;

  const fourth = await spawn('fourth');
  await fourth.waitForLog((l) => l.msg === 'schedule loaded');
  const tick = await fetch(`http://127.0.0.1:${fourth.port}/internal/tick`, { method: 'POST', headers: { 'x-service-key': SERVICE_KEY } });
  assert.equal(tick.status, 200);
  assert.equal(((await tick.json()) as { counts: { due: number } }).counts.due, 0, 'nothing is due: the committed write-back moved nextRunAt');
  const { rows: [snap] } = await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'post'`);
  const claim = await db.pool.query(`SELECT outcome FROM mana_ai.claim_run($1, to_timestamp($2 / 1000.0), 'probe', interval '1 minute', interval '0', NULL, NULL, NULL)`, [snap.sid, due]);
  assert.notEqual(claim.rows[0].outcome, 'claimed', 'the old due time cannot be claimed again');
  assert.equal((await runnerRows('post')).length, 1, 'one iteration');
  const runs = await db.pool.query(`SELECT status FROM mana_ai.mission_runs WHERE mission_id = 'post'`);
  assert.deepEqual(runs.rows, [{ status: 'done' }]);
  fourth.kill('SIGTERM');
  assert.equal(await fourth.exited, 0);
});
