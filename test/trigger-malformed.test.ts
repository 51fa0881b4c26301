// Whatever a mission row holds, the mana-sync insert commits; rows the
// trigger cannot fold land in snapshot_errors; valid missions are unharmed.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission, type RawChange } from './harness/changes.js';

let db: TestDb;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const huge = 'x'.repeat(1024 * 1024);
const longId = 'id-'.repeat(5000);
function deep(n: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < n; i++) v = { v };
  return v;
}

function malformedRows(): RawChange[] {
  const u = 'bad-user';
  const rows: RawChange[] = [];
  const add = (recordId: string, op: RawChange['op'], data: unknown, fieldTimestamps?: unknown) =>
    rows.push({ userId: u, recordId, op, data, fieldTimestamps });
  add('b1', 'insert', 'a string');
  add('b2', 'insert', [1, 2, 3]);
  add('b3', 'insert', 42);
  add('b4', 'insert', true);
  add('b5', 'insert', null);
  add('b6', 'insert', webappMission({ nextRunAt: 'tomorrow' }));
  add('b7', 'insert', webappMission({ cadence: 'every day' }));
  add('b8', 'insert', webappMission({ title: huge }));
  add('b9', 'insert', webappMission({ state: 7 }));
  add('b10', 'insert', webappMission({ iterations: 'none' }));
  add('b11', 'insert', webappMission({ updatedAt: 12345 }));
  add('b12', 'insert', webappMission({ createdAt: { not: 'a date' } }));
  add('b13', 'insert', webappMission({ nextRunAt: '+275760-09-13T00:00:00.000Z' }));
  add('b14', 'insert', webappMission({ nextRunAt: '1969-12-31T23:59:59.999Z' }));
  add('b15', 'insert', webappMission({ deletedAt: 5 }));
  add('b16', 'insert', deep(500));
  add('b17', 'insert', { id: 'other-id', __fieldTimestamps: 'x', __fieldActors: [1], __lastActor: null });
  add('b18', 'update', { title: 'x' }, { title: 12345 });
  add('b19', 'update', { title: 'x' }, 'not an object');
  add('b20', 'update', { title: 'x' }, [1, 2]);
  add('b21', 'update', 'a string', { title: '2026-01-01T00:00:00.000Z' });
  add('b22', 'update', [1], {});
  add('b23', 'update', null, null);
  add('b24', 'update', { state: 'active', nextRunAt: 'soon' }, { state: '2026-01-01T00:00:00.000Z', nextRunAt: '2026-01-01T00:00:00.000Z' });
  add('b25', 'delete', { deletedAt: 12345 });
  add('b26', 'delete', { deletedAt: null });
  add('b27', 'delete', 'gone');
  add('b28', 'delete', [1]);
  add('b29', 'delete', null);
  add('b30', 'delete', {});
  add('unknown-hard-delete', 'delete', {});
  add('unknown-soft-delete', 'delete', { deletedAt: '2026-01-01T00:00:00.000Z' });
  add(longId, 'insert', webappMission({ title: 'long id' }));
  add(longId, 'update', { state: 'paused' }, { state: '2099-01-01T00:00:00.000Z' });
  add('', 'insert', webappMission());
  add('b36', 'insert', webappMission({ cadence: { kind: 'interval', everyMinutes: 'NaN' } }));
  add('b37', 'insert', webappMission({ cadence: { kind: 'interval', everyMinutes: -5 } }));
  add('b38', 'insert', webappMission({ cadence: { kind: 'cron', expression: 'never' } }));
  add('b39', 'insert', webappMission({ inputs: 'all of them' }));
  add('b40', 'insert', webappMission({ '': 'empty key', 'ünï©ødé': '\u{1F600}' }));
  add('b41', 'insert', webappMission({ nextRunAt: '2026-04-15T09:30:00.000+25:00' }));
  add('b42', 'insert', webappMission({ nextRunAt: '2026-04-15 09:30:00' }));
  add('b43', 'update', { nextRunAt: '2026-04-15T09:30:00.000Z' }, { nextRunAt: '' });
  add('b44', 'update', { title: { a: [1, { b: null }] } }, { title: '2026-01-01T00:00:00.000Z' });
  add('b45', 'insert', { updatedAt: '9999-12-31T23:59:59.999Z', state: 'active' });
  add('b46', 'delete', { deletedAt: '' });
  add('b47', 'insert', webappMission({ iterations: Array.from({ length: 2000 }, (_, i) => ({ id: `it-${i}` })) }));
  add('b48', 'insert', JSON.parse('{"__proto__": {"polluted": true}, "state": "paused"}'));
  add('b49', 'insert', webappMission({ nextRunAt: '0000-01-01T00:00:00.000Z' }));
  add('b50', 'insert', webappMission({ nextRunAt: '2024-02-29T12:00:00.000Z' }));
  add('b51', 'update', { nextRunAt: 'later' }, { nextRunAt: '2026-01-01T00:00:00.000Z', extra: 5 });
  add('\u{1F600}-id', 'insert', webappMission({ title: 'emoji id' }));
  return rows;
}

it('at least 50 malformed mission rows all commit; errors are recorded; a valid mission keeps a correct snapshot', async () => {
  const valid = webappMission({ id: 'good', title: 'gut', nextRunAt: '2030-01-01T00:00:00.000Z' });
  await pushChange(db.pool, { userId: 'good-user', recordId: 'good', op: 'insert', data: valid });
  const rows = malformedRows();
  assert.ok(rows.length >= 50, `${rows.length} rows`);
  const ids: string[] = [];
  for (const row of rows) {
    const { id } = await pushChange(db.pool, row); // throws if the insert failed
    ids.push(id);
  }
  const committed = await db.pool.query('SELECT count(*)::int AS n FROM sync_changes WHERE id = ANY($1::uuid[])', [ids]);
  assert.equal(committed.rows[0].n, rows.length, 'every insert committed');

  const errors = await db.pool.query('SELECT change_id, error FROM mana_ai.snapshot_errors');
  const errorIds = new Set(errors.rows.map((r) => r.change_id));
  // Each row is either recorded as an error or folded harmlessly.
  const folded = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_snapshots WHERE user_id = 'bad-user'`);
  assert.ok(errors.rows.length >= 10, `${errors.rows.length} errors recorded`);
  assert.ok(folded.rows[0].n > 0);
  for (const r of errors.rows) assert.ok(r.error.length > 0 && r.error.length <= 2000);
  // Data of a non-object type is an error, never a snapshot.
  for (const i of [1, 2, 3, 4]) {
    assert.equal(errorIds.has(ids[i - 1]), true, `row b${i} recorded`);
  }
  // A long id is folded: the payload never carries it, the digest keys it.
  const long = await db.pool.query(`SELECT state, length(mission_id) AS len FROM mana_ai.mission_snapshots WHERE user_id = 'bad-user' AND mission_id LIKE 'id-id-%'`);
  assert.deepEqual(long.rows, [{ state: 'paused', len: 15000 }]);
  // Prototype keys are plain data.
  const proto = await db.pool.query(`SELECT record -> '__proto__' AS p, state FROM mana_ai.mission_snapshots WHERE mission_id = 'b48'`);
  assert.deepEqual(proto.rows, [{ p: { polluted: true }, state: 'paused' }]);

  const good = await db.pool.query(`SELECT record, state, next_run_at FROM mana_ai.mission_snapshots WHERE user_id = 'good-user'`);
  assert.equal(good.rows[0].record.title, 'gut');
  assert.equal(good.rows[0].state, 'active');
  assert.equal(good.rows[0].next_run_at.toISOString(), '2030-01-01T00:00:00.000Z');
});
