// mission_runs and snapshot_errors stay bounded without a polling loop
// (issue 18): each insert prunes up to 100 rows older than the retention
// (sql/functions/retention.sql), keeps claims, retries and pending repairs, and never fails
// the insert, whatever the retention setting holds.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange } from './harness/changes.js';

let db: TestDb;
let devices: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  devices = new pg.Pool({ connectionString: db.writerUrl, max: 2 });
});
after(async () => {
  await devices?.end();
  await db?.drop();
});

const count = async (q: string) => Number((await db.pool.query(q)).rows[0].n);

describe('retention', () => {
  it('an insert into mission_runs prunes finished runs past the retention, at most 100 at a time, and keeps claims and retries', async () => {
    await db.pool.query(`
      INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, finished_at, started_at)
      SELECT decode(md5('old' || g || s), 'hex'), g, 'u', 'm' || g, now() - interval '40 days', s, now() - interval '31 days', now() - interval '31 days'
        FROM generate_series(1, 150) g, (VALUES ('done'), ('running'), ('released')) v(s)
       WHERE s = 'done' OR g <= 2`);
    // Those 154 were one statement: the first 100 old finished ones went with it.
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE status = 'done'`), 50, 'pruned by the insert itself, 100 at most');
    await db.pool.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES ('\\x01', 1, 'u', 'new', now(), 'running')`);
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE status = 'done'`), 0);
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE status IN ('running', 'released')`), 5, 'claims and retries are never pruned');
  });

  it('a retention setting that is not an interval falls back to the default; a shorter one prunes sooner', async () => {
    await db.pool.query(`ALTER DATABASE ${db.name} SET mana_ai.run_retention = 'soon-ish'`);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, finished_at) VALUES ('\\x02', 2, 'u', 'recent', now(), 'done', now() - interval '2 days')`);
      await c.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES ('\\x03', 3, 'u', 'x', now(), 'running')`);
      assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE mission_id = 'recent'`), 1, 'kept: the default is 30 days');
      await c.query(`SET mana_ai.run_retention = '1 day'`);
      await c.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES ('\\x04', 4, 'u', 'y', now(), 'running')`);
      assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE mission_id = 'recent'`), 0, 'pruned under a 1-day retention');
    } finally {
      await c.end();
      await db.pool.query(`ALTER DATABASE ${db.name} RESET mana_ai.run_retention`);
    }
  });

  it('a new fold error prunes old errors that need nothing more, and keeps pending transient ones', async () => {
    await db.pool.query(`
      INSERT INTO mana_ai.snapshot_errors (user_id, record_id, op, error, sqlstate, transient, partition, created_at, repaired_at)
      VALUES ('u', 'a', 'insert', 'bad', '22023', false, 0, now() - interval '8 days', NULL),
             ('u', 'b', 'insert', 'x', '40P01', true, 0, now() - interval '8 days', now() - interval '8 days'),
             ('u', 'c', 'insert', 'x', '40P01', true, 0, now() - interval '8 days', NULL)`);
    // A mission row the fold refuses (a change without a record id cannot
    // be written; use a record whose data is not an object): recorded, and
    // the device's insert commits.
    await pushChange(devices, { userId: 'u-poison', recordId: 'p1', op: 'insert', data: [1, 2, 3] });
    const rows = (await db.pool.query(`SELECT record_id FROM mana_ai.snapshot_errors ORDER BY id`)).rows.map((r) => r.record_id);
    assert.ok(!rows.includes('a') && !rows.includes('b'), `old errors pruned: ${rows}`);
    assert.ok(rows.includes('c'), 'the pending transient error stays until it is repaired');
    assert.ok(rows.includes('p1'), 'the new error is recorded');
  });
});
