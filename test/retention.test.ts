// mission_runs and snapshot_errors stay bounded without a polling loop
// (issue 18): inserts prune rows older than the retention
// (sql/functions/retention.sql; mission_runs on one insert in eight, up to
// 800 rows, issue 30), keep claims, retries and pending repairs, and never
// fail the insert, whatever the retention setting holds.

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
  /** One-row inserts into mission_runs until `done()` holds (an insert prunes with chance 1/8: 400 miss all with a chance below 1e-20). */
  const insertRunsUntil = async (done: () => Promise<boolean>, tag: string) => {
    for (let i = 0; i < 400; i++) {
      if (await done()) return;
      await db.pool.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES (decode(md5($1), 'hex'), 1, 'u', $1, now(), 'running')`, [`${tag}-${i}`]);
    }
    assert.ok(await done(), `not pruned after 400 inserts (${tag})`);
  };

  it('inserts into mission_runs prune finished runs past the retention, at most 800 at a time, and keep claims and retries', async () => {
    await db.pool.query(`
      INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, finished_at, started_at)
      SELECT decode(md5('old' || g || s), 'hex'), g, 'u', 'm' || g, now() - interval '40 days', s, now() - interval '31 days', now() - interval '31 days'
        FROM generate_series(1, 1000) g, (VALUES ('done'), ('running'), ('released')) v(s)
       WHERE s = 'done' OR g <= 2`);
    const done = () => count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE status = 'done'`);
    let before = await done();
    assert.ok(before >= 200, `one insert prunes at most 800 (left: ${before})`);
    await insertRunsUntil(async () => {
      const now = await done();
      assert.ok(before - now <= 800, `one insert pruned ${before - now}`);
      before = now;
      return now === 0;
    }, 'prune');
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE status IN ('running', 'released') AND mission_id LIKE 'm%'`), 4, 'claims and retries are never pruned');
  });

  it('a retention value that is not an interval falls back to the default; a shorter one prunes sooner', async () => {
    await db.pool.query(`INSERT INTO mana_ai.settings (key, value) VALUES ('run_retention', 'soon-ish')`);
    try {
      await db.pool.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, finished_at) VALUES ('\\x02', 2, 'u', 'recent', now(), 'done', now() - interval '2 days')`);
      // 60 inserts prune at least once with a chance of 1 - (7/8)^60 > 0.9996; kept every time: the default is 30 days
      for (let i = 0; i < 60; i++) await db.pool.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES (decode(md5($1), 'hex'), 3, 'u', 'x', now(), 'running')`, [`keep-${i}`]);
      assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE mission_id = 'recent'`), 1, 'kept: the default is 30 days');
      await db.pool.query(`UPDATE mana_ai.settings SET value = '1 day' WHERE key = 'run_retention'`);
      await insertRunsUntil(async () => (await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE mission_id = 'recent'`)) === 0, 'short');
    } finally {
      await db.pool.query(`DELETE FROM mana_ai.settings WHERE key = 'run_retention'`);
    }
  });

  // Issue 27, item 8: the pruner is a SECURITY DEFINER; a session that set
  // mana_ai.run_retention for itself made it delete other users' runs
  // (the runtime role has no DELETE there) and, through the trigger,
  // mana-sync's role (no rights in mana_ai at all) settled fold errors.
  it('a session setting of its own changes no retention: neither the runtime role nor mana-sync\'s role prunes younger rows', async () => {
    await db.pool.query(`
      INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status, finished_at)
      SELECT decode(md5('victim' || g), 'hex'), 100 + g, 'victim', 'v' || g, now(), 'done', now() - interval '2 days' FROM generate_series(1, 5) g`);
    await db.pool.query(`
      INSERT INTO mana_ai.snapshot_errors (user_id, record_id, op, error, sqlstate, transient, partition, created_at)
      VALUES ('victim', 'settled', 'insert', 'bad', '22023', false, 0, now() - interval '2 days')`);
    const runtime = new pg.Client({ connectionString: db.daemonUrl });
    const writer = new pg.Client({ connectionString: db.writerUrl });
    await runtime.connect();
    await writer.connect();
    try {
      await runtime.query(`SET mana_ai.run_retention = '1 hour'`);
      await runtime.query('BEGIN');
      await runtime.query(`SELECT set_config('app.current_user_id', 'attacker', true)`);
      await runtime.query(`INSERT INTO mana_ai.mission_runs (mission_key, sid, user_id, mission_id, due_at, status) VALUES ('\\x05', 5, 'attacker', 'a', now(), 'running')`);
      await runtime.query('COMMIT');
      await writer.query(`SET mana_ai.error_retention = '1 hour'`);
      await writer.query('BEGIN');
      await writer.query(`SELECT set_config('app.current_user_id', 'attacker', true)`);
      await writer.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id) VALUES ('ai', 'aiMissions', 'poison', 'attacker', 'insert', '[1]', 'd')`);
      await writer.query('COMMIT');
    } finally {
      await runtime.end();
      await writer.end();
    }
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.mission_runs WHERE user_id = 'victim'`), 5, "the victim's finished runs are all there");
    assert.equal(await count(`SELECT count(*) AS n FROM mana_ai.snapshot_errors WHERE record_id = 'settled'`), 1, "the victim's settled error is there");
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

  it('a new loss of iterations prunes settled losses past the retention and keeps pending ones (issue 28)', async () => {
    await db.pool.query(`
      INSERT INTO mana_ai.lost_iterations (mission_key, user_id, mission_id, partition, iterations, lost_at, restored_at, outcome)
      VALUES ('\\x10', 'u', 'old-settled', 0, '[]', now() - interval '40 days', now() - interval '40 days', 'restored'),
             ('\\x11', 'u', 'old-pending', 0, '[]', now() - interval '40 days', NULL, NULL)`);
    await db.pool.query(`INSERT INTO mana_ai.lost_iterations (mission_key, user_id, mission_id, partition, iterations) VALUES ('\\x12', 'u', 'new', 0, '[]')`);
    const left = (await db.pool.query(`SELECT mission_id FROM mana_ai.lost_iterations ORDER BY id`)).rows.map((r) => r.mission_id);
    assert.deepEqual(left, ['old-pending', 'new']);
  });
});
