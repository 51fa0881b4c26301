// Backfill on a database that predates the trigger: resumable, safe while
// devices keep writing, and it converges to a replay from scratch.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { migrate } from '../src/db/migrate.js';
import { backfillBatch, resetBackfill } from '../src/db/sql/backfill-batch.js';
import { foldRows, type ChangeRow } from '../src/merge/merge.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';

let db: TestDb;
before(async () => {
  db = await createTestDatabase({ migrate: false });
});
after(async () => {
  await db?.drop();
});

async function seed(users: number, missions: number, tag: string) {
  for (let u = 0; u < users; u++) {
    for (let m = 0; m < missions; m++) {
      const userId = `bf-user-${u}`;
      const recordId = `mission-${m}`;
      await pushChange(db.pool, { userId, recordId, op: 'insert', data: webappMission({ title: `${tag} ${m}`, updatedAt: '2026-01-01T00:00:00.000Z' }) });
      await pushChange(db.pool, { userId, recordId, op: 'update', data: { state: m % 2 ? 'paused' : 'active' }, fieldTimestamps: { state: `2026-01-0${2 + (m % 3)}T00:00:00.000Z` } });
      if (m === 3) await pushChange(db.pool, { userId, recordId, op: 'delete', data: {} });
      if (m === 4) await pushChange(db.pool, { userId, recordId, op: 'delete', data: { deletedAt: '2026-02-01T00:00:00.000Z' } });
    }
  }
}

async function replayFromScratch(): Promise<Map<string, unknown>> {
  const { rows } = await db.pool.query(
    `SELECT user_id, record_id, op, data, field_timestamps, created_at FROM sync_changes
      WHERE app_id = 'ai' AND table_name = 'aiMissions' ORDER BY created_at, id`,
  );
  const byMission = new Map<string, ChangeRow[]>();
  for (const r of rows) {
    const k = `${r.user_id}/${r.record_id}`;
    if (!byMission.has(k)) byMission.set(k, []);
    byMission.get(k)!.push({ op: r.op, recordId: r.record_id, data: r.data, fieldTimestamps: r.field_timestamps, createdAt: r.created_at.toISOString() });
  }
  const out = new Map<string, unknown>();
  for (const [k, changes] of byMission) {
    const folded = foldRows(changes);
    if (folded) out.set(k, folded.record);
  }
  return out;
}

async function snapshots(): Promise<Map<string, unknown>> {
  const { rows } = await db.pool.query('SELECT user_id, mission_id, record FROM mana_ai.mission_snapshots');
  return new Map(rows.map((r) => [`${r.user_id}/${r.mission_id}`, r.record]));
}

it('builds snapshots for rows written before the trigger, resumably, while devices keep writing', async () => {
  await seed(3, 6, 'before');
  await migrate(db.url); // the trigger arrives now
  assert.equal((await snapshots()).size, 0, 'old rows have no snapshots yet');

  const first = await backfillBatch(db.pool, 4);
  assert.equal(first.missions, 4);
  assert.equal(first.finished, false);
  // "interrupted" here; devices keep writing between batches
  await pushChange(db.pool, { userId: 'bf-user-0', recordId: 'mission-0', op: 'update', data: { title: 'during' }, fieldTimestamps: { title: '2026-03-01T00:00:00.000Z' } });
  await pushChange(db.pool, { userId: 'bf-user-2', recordId: 'mission-5', op: 'update', data: { title: 'during 2' }, fieldTimestamps: { title: '2026-03-01T00:00:00.000Z' } });
  await pushChange(db.pool, { userId: 'bf-user-9', recordId: 'new', op: 'insert', data: webappMission({ title: 'new' }) });
  // resume from the stored cursor
  let r;
  let batches = 1;
  do {
    r = await backfillBatch(db.pool, 4);
    batches += 1;
  } while (!r.finished);
  assert.ok(batches > 2);
  const expected = await replayFromScratch();
  const got = await snapshots();
  assert.deepStrictEqual(got, expected);
  assert.equal(got.has('bf-user-0/mission-3'), false, 'hard-deleted mission has no snapshot');
  assert.equal((got.get('bf-user-0/mission-0') as { title: string }).title, 'during');

  // running it again changes nothing and notifies nothing
  const versions = await db.pool.query('SELECT sum(version)::int AS v FROM mana_ai.mission_snapshots');
  await resetBackfill(db.pool);
  while (!(await backfillBatch(db.pool, 100)).finished);
  const versionsAfter = await db.pool.query('SELECT sum(version)::int AS v FROM mana_ai.mission_snapshots');
  assert.equal(versionsAfter.rows[0].v, versions.rows[0].v);
  assert.deepStrictEqual(await snapshots(), expected);
});

it('covers agents too: a lost agent snapshot comes back from its rows', async () => {
  const now = '2026-03-01T00:00:00.000Z';
  await pushChange(db.pool, {
    userId: 'bf-agent-user', recordId: 'bf-agent', appId: 'ai', tableName: 'agents', op: 'insert',
    data: { id: 'bf-agent', createdAt: now, updatedAt: now, name: 'Vorher', role: 'r', state: 'active', maxConcurrentMissions: 2, maxTokensPerDay: 900 },
  });
  await pushChange(db.pool, {
    userId: 'bf-agent-user', recordId: 'bf-agent', appId: 'ai', tableName: 'agents', op: 'update',
    data: { name: 'Nachher', state: 'paused' }, fieldTimestamps: { name: '2026-03-02T00:00:00.000Z', state: '2026-03-02T00:00:00.000Z' },
  });
  const snap = async () => (await db.pool.query(`SELECT record, field_ts, gate, max_concurrent, max_tokens_per_day FROM mana_ai.agent_snapshots WHERE agent_id = 'bf-agent'`)).rows[0];
  const byTrigger = await snap();
  assert.equal(byTrigger.gate, 'paused');
  await db.pool.query(`DELETE FROM mana_ai.agent_snapshots WHERE agent_id = 'bf-agent'`);
  await resetBackfill(db.pool);
  for (let i = 0; i < 1000; i++) if ((await backfillBatch(db.pool, 50)).finished) break;
  assert.deepEqual(await snap(), byTrigger);
});
