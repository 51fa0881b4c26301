// The dead-letter (issue 20): after MANA_AI_MAX_CONSECUTIVE_FAILURES (5) failed
// runs in a row a mission is parked: one last iteration says why, no LLM
// request at its later due times, the view and the gauge show it, its state
// is untouched; a user edit brings it back and its next look runs it; a
// success in between resets the count; a restart and a partition move keep
// it parked.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { SERVICE_KEY, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { inspectSchedule } from '../src/db/sql/inspect-schedule.js';
import { eventually } from './harness/wait.js';
import { dueNow as dueNowOf } from './harness/due-now.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];

/** The model's answers for a title: broken (a failed iteration) or a plan. */
const answers = new Map<string, 'broken' | 'good'>();
const asked = new Map<string, number>();

// Parked missions are looked at again after 300 ms here (their cadence in production).
// (MANA_AI_MAX_CONSECUTIVE_FAILURES at its default, 5)
const ENV = { MANA_AI_MIN_RUN_GAP_MS: '0', MANA_AI_PARKED_RECHECK_MS: '300' };

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer((req) => {
    for (const [title, mode] of answers) {
      if (!promptMentions(req, title)) continue;
      asked.set(title, (asked.get(title) ?? 0) + 1);
      return { content: mode === 'broken' ? 'kein Plan, nur Text' : planAnswer('Plan', []) };
    }
    return { content: planAnswer('ok', []) };
  });
});
after(async () => {
  for (const d of daemons) await d.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const start = async (name: string) => {
  const d = await startTestDaemon(db.daemonUrl, llm.url, { ...ENV, MANA_AI_WORKER_ID: name });
  daemons.push(d);
  return d;
};
const stop = async (d: TestDaemon) => {
  await d.stop();
  daemons.splice(daemons.indexOf(d), 1);
};
const titleOf = (id: string) => `Sackgasse ${id}`;

/** Makes the mission due now (a device write: a user change) and waits for its run to end. */
const dueNow = (d: TestDaemon, user: string, id: string, data: Record<string, unknown> = {}) =>
  dueNowOf(db.pool, d, { userId: user, missionId: id, data, until: () => true });
const parkedRow = async (id: string) => (await db.pool.query(`SELECT * FROM mana_ai.parked_missions WHERE mission_id = $1`, [id])).rows[0];
const scrapeParked = async (d: TestDaemon) => Number(/^mana_ai_missions_parked\{[^}]*\} (\d+)/m.exec(await d.metrics.registry.metrics())?.[1]);

describe('dead-letter', () => {
  it('parks after 5 failures in a row: one last iteration says why, no LLM request at later due times, view and gauge show it, state untouched; a user edit brings it back', async (t) => {
    const d = await start('dl-a');
    t.after(() => (daemons.includes(d) ? stop(d) : undefined));
    const user = 'u-dl';
    const id = 'dl-1';
    answers.set(titleOf(id), 'broken');
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title: titleOf(id), cadence: { kind: 'interval', everyMinutes: 0.01 }, nextRunAt: iso(Date.now() + 30_000) }) });
    for (let i = 1; i <= 5; i++) assert.equal((await dueNow(d, user, id)).outcome, 'failed', `run ${i} failed`);
    const snap = (await db.pool.query(`SELECT state, record FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0];
    assert.equal(snap.state, 'active', 'the mission\'s state is not touched');
    const last = snap.record.iterations.at(-1);
    assert.equal(last.overallStatus, 'failed');
    assert.match(last.summary, /^Diese Mission ist angehalten: 5 Durchläufe nacheinander sind fehlgeschlagen\. Letzter Fehler: Der Planer hat keinen gültigen Plan geliefert\./);
    const row = await parkedRow(id);
    assert.equal(row.failures, 5);
    assert.equal(await scrapeParked(d), 1, 'the gauge');
    const inspected = await inspectSchedule(db.pool, { userId: user, limit: 10 });
    assert.equal(inspected[0]!.parked, true, 'inspect shows it');
    const internal = await fetch(`http://127.0.0.1:${d.port}/internal/missions/${user}`, { headers: { 'x-service-key': SERVICE_KEY } }).then((r) => r.json()) as { parked: { mission_id: string; failures: number }[] };
    assert.deepEqual(internal.parked.map((p) => [p.mission_id, p.failures]), [[id, 5]], 'GET /internal/missions lists it');
    // Its next due time comes (forced here: the cadence's minute is long for a test), twice: parked, not planned.
    const before = asked.get(titleOf(id));
    const { sid, next_run_at: next } = (await db.pool.query(`SELECT sid, next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0];
    assert.equal(await d.reactor!.enqueue(Number(sid), next.getTime()), 'parked');
    assert.equal(await d.reactor!.enqueue(Number(sid), next.getTime()), 'parked');
    assert.equal(asked.get(titleOf(id)), before, 'no LLM request while parked');
    const runs = (await db.pool.query(`SELECT status, attempts FROM mana_ai.mission_runs WHERE mission_id = $1 AND due_at = $2`, [id, next])).rows;
    assert.deepEqual(runs, [{ status: 'released', attempts: 0 }], 'looking at a parked mission uses up no attempt');
    // The user edits the mission (a new title and, as the webapp's editor does, the next run):
    // it is no longer parked, runs at that due time, and the model now answers well.
    answers.delete(titleOf(id));
    answers.set(`${titleOf(id)} neu`, 'good');
    const ev = await dueNow(d, user, id, { title: `${titleOf(id)} neu` });
    assert.equal(ev.outcome, 'planned', 'planned again after the user\'s change');
    assert.equal(await parkedRow(id), undefined, 'no longer parked');
    const unparked = await d.metrics.registry.getSingleMetricAsString('mana_ai_missions_unparked_total');
    assert.match(unparked, /\} 1/);
  });

  it('a success in between resets the count', async (t) => {
    const d = await start('dl-b');
    t.after(() => (daemons.includes(d) ? stop(d) : undefined));
    const user = 'u-dl2';
    const id = 'dl-2';
    answers.set(titleOf(id), 'broken');
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title: titleOf(id), nextRunAt: iso(Date.now() + 30_000) }) });
    for (let i = 0; i < 4; i++) assert.equal((await dueNow(d, user, id)).outcome, 'failed');
    answers.set(titleOf(id), 'good');
    assert.equal((await dueNow(d, user, id)).outcome, 'planned');
    answers.set(titleOf(id), 'broken');
    for (let i = 0; i < 4; i++) assert.equal((await dueNow(d, user, id)).outcome, 'failed');
    assert.equal(await parkedRow(id), undefined, '4 + success + 4 is not 5 in a row');
    // the newest runs count, not the oldest: one more failure makes five in a row after the success
    assert.equal((await dueNow(d, user, id)).outcome, 'failed');
    assert.ok(await parkedRow(id), 'success + 5 failures parks it');
  });

  it('a parked mission stays parked across a daemon restart and a partition move', async () => {
    const a = await start('dl-c');
    const user = 'u-dl3';
    const id = 'dl-3';
    answers.set(titleOf(id), 'broken');
    await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title: titleOf(id), cadence: { kind: 'interval', everyMinutes: 0.01 }, nextRunAt: iso(Date.now() + 30_000) }) });
    for (let i = 0; i < 5; i++) await dueNow(a, user, id);
    assert.ok(await parkedRow(id));
    const count = asked.get(titleOf(id));
    const { sid, next_run_at: next } = (await db.pool.query(`SELECT sid, next_run_at FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0];
    // restart: a new daemon, at the mission's due time, finds it parked
    await stop(a);
    const b = await start('dl-d');
    assert.equal(await b.reactor!.enqueue(Number(sid), next.getTime()), 'parked');
    // partition move: a second daemon joins, the first leaves; the new owner finds it parked
    const c = await start('dl-e');
    await stop(b);
    assert.equal(await c.reactor!.enqueue(Number(sid), next.getTime()), 'parked');
    assert.equal(asked.get(titleOf(id)), count, 'no LLM request after parking');
    assert.ok(await parkedRow(id));
  });
});
