// The daemon's edges: graceful shutdown gives back what it could not
// finish, 429 honours Retry-After, logs never carry keys or user content
// at info level, and `npm start` runs the built daemon and exits 0 on
// SIGTERM.
// Starts first (about 21 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { holdAnswers, planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY, startTestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

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

/** An LLM answer the test releases by hand; `asked` resolves when the daemon is waiting for it. */


it('stop() closes every connection the daemon opened, also when it never wrote anything back', async () => {
  const own = await createTestDatabase();
  try {
    const sessions = async () => (await own.pool.query<{ a: string }>(
      `SELECT application_name AS a FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'mana-ai%' AND application_name <> 'mana-ai-test'`)).rows.map((r) => r.a).sort();
    const d = await startTestDaemon(own.daemonUrl, llm.url);
    // its pool (the schedule's read), the LISTEN connection and the partition locks' connection
    await eventually(async () => (await sessions()).includes('mana-ai'), 'the daemon\'s pool has a connection');
    await d.stop();
    // a pool's end() resolves as its sockets close: give them a moment, then none may be left
    let left: string[] = [];
    await eventually(async () => (left = await sessions()).length === 0, `no session of the stopped daemon left (still: ${left.join(', ')})`, 5_000)
      .catch(() => assert.deepEqual(left, [], 'sessions of the stopped daemon'));
  } finally {
    await own.drop();
  }
});

it('on shutdown, a run still waiting for the LLM after the grace period is given back and the next daemon plans it once', async () => {
  const held = holdAnswers(llm, () => true, 'nach Neustart'); // holds the answer past the first daemon's grace period
  const first = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_SHUTDOWN_GRACE_MS: '300', MANA_AI_WORKER_ID: 'first' });
  await pushChange(db.pool, { userId: 'sd', recordId: 'slow', op: 'insert', data: webappMission({ id: 'slow', nextRunAt: iso(Date.now() + 100) }) });
  await held.asked;
  await first.stop();

  const runs = await db.pool.query(`SELECT status, claimed_by, iteration_id FROM mana_ai.mission_runs WHERE mission_id = 'slow'`);
  assert.deepEqual(runs.rows, [{ status: 'released', claimed_by: null, iteration_id: null }]);
  const written = await db.pool.query(`SELECT 1 FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = 'slow'`);
  assert.equal(written.rowCount, 0, 'nothing written back by the daemon that stopped');
  assert.ok(first.logs.some((l) => l.includes('gave back claims')), 'the give-back is logged');

  llm.setScript(() => ({ content: planAnswer('nach Neustart') }));
  held.release();
  const second = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'second' });
  try {
    const ev = await second.waitForRun((e) => e.missionId === 'slow');
    assert.equal(ev.outcome, 'planned');
    const rows = await db.pool.query(`SELECT data FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = 'slow'`);
    assert.equal(rows.rowCount, 1);
    assert.equal(rows.rows[0].data.iterations[0].summary, 'nach Neustart');
    const done = await db.pool.query(`SELECT status, claimed_by FROM mana_ai.mission_runs WHERE mission_id = 'slow'`);
    assert.deepEqual(done.rows, [{ status: 'done', claimed_by: 'second' }]);
  } finally {
    await second.stop();
  }
});

it('on shutdown, a run that finishes within the grace period is written back, not given back', async () => {
  const held = holdAnswers(llm, () => true, 'in der Gnadenfrist');
  const d = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_SHUTDOWN_GRACE_MS: '20000' });
  await pushChange(db.pool, { userId: 'sd', recordId: 'graceful', op: 'insert', data: webappMission({ id: 'graceful', nextRunAt: iso(Date.now() + 100) }) });
  await held.asked;
  const stopping = d.stop();
  held.release();
  await stopping;
  const ev = await d.waitForRun((e) => e.missionId === 'graceful');
  assert.equal(ev.outcome, 'planned');
  const runs = await db.pool.query(`SELECT status FROM mana_ai.mission_runs WHERE mission_id = 'graceful'`);
  assert.deepEqual(runs.rows, [{ status: 'done' }]);
  llm.setScript(() => ({ content: planAnswer() }));
});

it('honours Retry-After on a 429 and plans once; logs carry no key and no user content at info level or above', async () => {
  const secretGoal = 'GEHEIMES-ZIEL-7f3a';
  await pushChange(db.pool, {
    userId: 'lg', recordId: 'goal-1', op: 'insert', appId: 'companion', tableName: 'goals',
    data: { id: 'goal-1', title: secretGoal, currentValue: 2, target: { value: 5, period: 'week' } },
  });
  let n = 0;
  llm.setScript((req) => {
    n += 1;
    assert.equal(req.headers['authorization'], `Bearer ${SERVICE_KEY}`);
    return n === 1 ? { status: 429, headers: { 'retry-after': '1' }, content: 'slow down' } : { content: planAnswer('nach 429') };
  });
  const d = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_LLM_RETRY_BASE_MS: '5' });
  try {
    await pushChange(db.pool, {
      userId: 'lg', recordId: 'rl', op: 'insert',
      data: webappMission({ id: 'rl', nextRunAt: iso(Date.now() + 100), inputs: [{ module: 'goals', table: 'goals', id: 'goal-1' }] }),
    });
    const ev = await d.waitForRun((e) => e.missionId === 'rl');
    assert.equal(ev.outcome, 'planned');
    assert.equal(n, 2, 'one 429, then the plan');
    assert.ok(llm.requests.at(-1)!.body.messages[1]!.content.includes(secretGoal), 'the goal reached the prompt');
    const retry = d.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'mana-llm request failed; retrying');
    assert.equal(retry?.reason, 'rate-limited');
    assert.equal(retry?.retryInMs, 1000, 'the delay is the server’s Retry-After, not the 5 ms backoff');
    const metrics = await fetch(`http://127.0.0.1:${d.port}/metrics`).then((r) => r.text());
    assert.match(metrics, /mana_ai_llm_retries_total\{reason="rate-limited",service="mana-ai"\} 1/);

    // the service key used on the HTTP surface, a wrong one too
    await fetch(`http://127.0.0.1:${d.port}/internal/missions/lg`, { headers: { 'x-service-key': SERVICE_KEY } });
    await fetch(`http://127.0.0.1:${d.port}/internal/missions/lg`, { headers: { 'x-service-key': 'wrong-key-guess' } });
  } finally {
    await d.stop();
  }
  const lines = d.logs.map((l) => JSON.parse(l) as { level: string; msg: string });
  assert.ok(lines.some((l) => l.level === 'debug' && JSON.stringify(l).includes(secretGoal)), 'debug may carry the prompt (the test daemon logs at debug)');
  for (const l of lines) {
    const text = JSON.stringify(l);
    assert.ok(!text.includes(SERVICE_KEY), `service key in a log line: ${l.msg}`);
    assert.ok(!text.includes('wrong-key-guess'), `presented key in a log line: ${l.msg}`);
    assert.ok(!text.includes(new URL(db.url).password || '\u0000'), `database password in a log line: ${l.msg}`);
    if (l.level !== 'debug' && l.level !== 'trace') assert.ok(!text.includes(secretGoal), `user content at ${l.level}: ${l.msg}`);
  }
});

it('`npm start` runs the built daemon: healthy, then exit 0 on SIGTERM', async () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['start'], 'node --max-semi-space-size=2 dist/main.js', 'the test runs what `npm start` runs');
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: 'ignore' });
  const child = spawn(process.execPath, ['--max-semi-space-size=2', 'dist/main.js'], {
    env: { ...process.env, PORT: '0', SYNC_DATABASE_URL: db.url, MANA_LLM_URL: llm.url, MANA_SERVICE_KEY: SERVICE_KEY, MANA_AI_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let port = 0;
  const listening = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const l = JSON.parse(line) as Record<string, unknown>;
      lines.push(l);
      if (typeof l['port'] === 'number') port = l['port'];
      if (port && l['msg'] === 'mana-ai started') resolve();
    });
  });
  await listening;
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(health.status, 200);
  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0);
  assert.ok(lines.some((l) => l['msg'] === 'signal received' && l['signal'] === 'SIGTERM'));
});
