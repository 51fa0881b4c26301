// Exactly one notification per schedule-relevant change; none for
// iteration-only or title-only updates. Payloads stay small for any id.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';

let db: TestDb;
let listener: pg.Client;
const received: { channel: string; payload: string }[] = [];
let waiters: (() => void)[] = [];

before(async () => {
  db = await createTestDatabase();
  listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  listener.on('notification', (n) => {
    received.push({ channel: n.channel, payload: n.payload ?? '' });
    const ready = waiters;
    waiters = [];
    for (const w of ready) w();
  });
  await listener.query('LISTEN mana_ai_missions');
});
after(async () => {
  await listener?.end();
  await db?.drop();
});

/** Waits until a marker notification arrives: everything before it has arrived too. */
async function drain(): Promise<{ s: number; v: number; p: number; d: number | null }[]> {
  const marker = `marker-${Math.random()}`;
  const seen = new Promise<void>((resolve) => {
    const check = () => (received.some((r) => r.payload === marker) ? resolve() : waiters.push(check));
    check();
  });
  await db.pool.query(`SELECT pg_notify('mana_ai_missions', $1)`, [marker]);
  await seen;
  const out = received.filter((r) => !r.payload.startsWith('marker-')).map((r) => JSON.parse(r.payload));
  received.length = 0;
  return out;
}

const T1 = '2026-01-01T00:00:00.000Z';
const T2 = '2026-01-02T00:00:00.000Z';
const T3 = '2026-01-03T00:00:00.000Z';

it('notifies once per schedule-relevant change and never for title or iteration updates', async () => {
  const u = 'nu';
  const m = 'nm';
  await drain();
  await pushChange(db.pool, { userId: u, recordId: m, op: 'insert', data: webappMission({ updatedAt: T1, nextRunAt: '2030-01-01T10:00:00.000Z' }) });
  const created = await drain();
  assert.equal(created.length, 1, 'snapshot appeared');
  assert.equal(created[0]!.d, Date.parse('2030-01-01T10:00:00.000Z'));
  assert.equal(created[0]!.v, 1);

  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { title: 'neu' }, fieldTimestamps: { title: T2 } });
  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { iterations: [{ id: 'i1' }], updatedAt: T2 }, fieldTimestamps: { iterations: T2, updatedAt: T2 } });
  assert.deepEqual(await drain(), [], 'title and iteration updates do not notify');

  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { nextRunAt: '2030-01-02T10:00:00.000Z' }, fieldTimestamps: { nextRunAt: T2 } });
  const moved = await drain();
  assert.equal(moved.length, 1);
  assert.equal(moved[0]!.d, Date.parse('2030-01-02T10:00:00.000Z'));
  assert.equal(moved[0]!.v, 4, 'version counts every applied change');

  // The runner's write-back (an iteration, updatedAt, the next run): folded
  // in the trigger's one-statement path, announced as the general path
  // announces it (issue 30); the same next run written again moves nothing.
  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { iterations: [{ id: 'i1' }, { id: 'i2' }], updatedAt: T2, nextRunAt: '2030-01-03T10:00:00.000Z' }, fieldTimestamps: { iterations: T2, updatedAt: T2, nextRunAt: T2 } });
  const written = await drain();
  assert.deepEqual(written.map((n) => [n.s, n.v, n.p, n.d]), [[created[0]!.s, 5, created[0]!.p, Date.parse('2030-01-03T10:00:00.000Z')]]);
  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { nextRunAt: '2030-01-03T10:00:00.000Z' }, fieldTimestamps: { nextRunAt: T2 } });
  assert.deepEqual(await drain(), [], 'a next run written unchanged does not notify');
  const { rows: [snap] } = await db.pool.query(`SELECT version, next_run_at, record -> 'iterations' AS its FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [m]);
  assert.deepEqual([Number(snap.version), snap.next_run_at.toISOString(), snap.its], [6, '2030-01-03T10:00:00.000Z', [{ id: 'i1' }, { id: 'i2' }]]);

  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { state: 'paused' }, fieldTimestamps: { state: T2 } });
  const paused = await drain();
  assert.equal(paused.length, 1);
  assert.equal(paused[0]!.d, null, 'paused: nothing to schedule');

  // a change that loses last-write-wins does not move the schedule
  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { state: 'active' }, fieldTimestamps: { state: T1 } });
  assert.deepEqual(await drain(), []);

  await pushChange(db.pool, { userId: u, recordId: m, op: 'update', data: { state: 'active' }, fieldTimestamps: { state: T3 } });
  assert.equal((await drain()).length, 1);

  await pushChange(db.pool, { userId: u, recordId: m, op: 'delete', data: { deletedAt: T3 } });
  const soft = await drain();
  assert.equal(soft.length, 1);
  assert.equal(soft[0]!.d, null);

  await pushChange(db.pool, { userId: u, recordId: m, op: 'delete', data: {} });
  const hard = await drain();
  assert.equal(hard.length, 1, 'removal notifies');
  assert.equal(hard[0]!.s, created[0]!.s);

  // other apps never notify
  await pushChange(db.pool, { userId: u, recordId: 'note', op: 'insert', data: { title: 'x' }, appId: 'notes', tableName: 'notes' });
  assert.deepEqual(await drain(), []);
});

it('keeps the payload small even for absurdly long ids', async () => {
  await drain();
  await pushChange(db.pool, { userId: 'u'.repeat(20000), recordId: 'm'.repeat(50000), op: 'insert', data: webappMission() });
  const got = await drain();
  assert.equal(got.length, 1);
  assert.ok(JSON.stringify(got[0]).length < 100);
});
