// Nothing the runtime role can do escalates (issue 18, item 1). The review's
// attack, replayed as the runtime role: a temporary view named like
// mana-sync's table that calls a temporary function, a transient fold error
// the role provokes itself, and a call of the SECURITY DEFINER repair. The
// view must never run; and the catalog must show every definer pinned
// (pg_temp last, no public) and owned by a role that is not a superuser.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';

let db: TestDb;
let runtime: pg.Pool;
let devices: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  runtime = new pg.Pool({ connectionString: db.daemonUrl, application_name: 'attacker', max: 3 });
  devices = new pg.Pool({ connectionString: db.writerUrl, application_name: 'device', max: 2 });
});
after(async () => {
  await runtime?.end();
  await devices?.end();
  await db?.drop();
});

describe('SECURITY DEFINER functions', () => {
  it('a temporary view shadowing sync_changes is never read by the repair the runtime role triggers', async () => {
    const user = 'u-attacker';
    await pushChange(devices, { userId: user, recordId: 'm-x', op: 'insert', data: webappMission({ id: 'm-x', state: 'paused' }) });
    const sid = Number((await db.pool.query(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id = 'm-x'`)).rows[0].sid);

    // A transient fold error made by the role itself: hold the snapshot row
    // through the write-back lock, let a device insert time out on it.
    const holder = await runtime.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT * FROM mana_ai.lock_snapshot_for_write_back($1)', [sid]);
      const dev = await devices.connect();
      try {
        await dev.query('BEGIN');
        await dev.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
        await dev.query(`SET LOCAL lock_timeout = '50ms'`);
        const now = new Date().toISOString();
        await dev.query(
          `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
           VALUES ('ai', 'aiMissions', 'm-x', $1, 'update', $2::jsonb, $3::jsonb, 'dev')`,
          [user, JSON.stringify({ title: 'neu' }), JSON.stringify({ title: now })],
        );
        await dev.query('COMMIT');
      } finally {
        dev.release();
      }
      await holder.query('ROLLBACK');
    } finally {
      holder.release();
    }
    const err = (await db.pool.query(`SELECT id::int AS id, sqlstate, transient FROM mana_ai.snapshot_errors WHERE record_id = 'm-x'`)).rows;
    assert.deepEqual(err.map((e) => [e.sqlstate, e.transient]), [['55P03', true]], 'the device insert committed; its fold error is transient');

    const attacker = await runtime.connect();
    try {
      await attacker.query(`
        CREATE FUNCTION pg_temp.evil() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM set_config('test.pwned_by',
                             current_user || ':' || (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)::text,
                             false);
          RETURN true;
        END $$`);
      await attacker.query(`
        CREATE TEMP VIEW sync_changes AS
        SELECT c.id, c.app_id, c.table_name, c.record_id, c.user_id, c.op, c.data, c.field_timestamps, c.created_at
          FROM public.sync_changes c WHERE pg_temp.evil()`);
      const ids = (await attacker.query(`SELECT * FROM mana_ai.pending_snapshot_errors(ARRAY(SELECT generate_series(0, 1023)), 10) AS id`)).rows;
      assert.deepEqual(ids.map((r) => Number(r.id)), [err[0].id]);
      const outcome = (await attacker.query('SELECT mana_ai.repair_snapshot_error($1) AS o', [err[0].id])).rows[0].o;
      assert.equal(outcome, 'repaired', 'the repair works for the runtime role');
      const pwned = (await attacker.query(`SELECT current_setting('test.pwned_by', true) AS v`)).rows[0].v;
      assert.ok(!pwned, `the shadowing view ran inside the definer as ${pwned}`);
    } finally {
      attacker.release(true);
    }
    // The repair folded the real rows: the device's title is in the snapshot.
    const rec = (await db.pool.query(`SELECT record->>'title' AS t FROM mana_ai.mission_snapshots WHERE sid = $1`, [sid])).rows[0];
    assert.equal(rec.t, 'neu');
  });

  it('every definer pins search_path with pg_temp last and without public, and is owned by a non-superuser', async () => {
    const { rows } = await db.pool.query(`
      SELECT p.oid::regprocedure::text AS fn, r.rolname AS owner, r.rolsuper, r.rolbypassrls,
             (SELECT c FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%') AS path
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner
       WHERE n.nspname = 'mana_ai' AND p.prosecdef`);
    // on_sync_change, repair_snapshot_error, pending_snapshot_errors, lock_snapshot_for_write_back, prune_old_rows
    assert.ok(rows.length >= 5, `definers found: ${rows.length}`);
    for (const r of rows) {
      assert.match(r.path ?? '', /^search_path=.*pg_temp$/, `${r.fn}: ${r.path}`);
      assert.doesNotMatch(r.path, /\bpublic\b/, r.fn);
      assert.equal(r.rolsuper, false, `${r.fn} is owned by superuser ${r.owner}`);
      assert.equal(r.rolbypassrls, false, `${r.fn} is owned by ${r.owner}, which bypasses RLS`);
    }
    // Every pinned path in the schema, definer or not (a definer calls them).
    const paths = (await db.pool.query(`
      SELECT p.oid::regprocedure::text AS fn, c AS path
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, unnest(p.proconfig) c
       WHERE n.nspname = 'mana_ai' AND c LIKE 'search_path=%'`)).rows;
    for (const r of paths) assert.match(r.path, /pg_temp$/, `${r.fn}: ${r.path}`);
    // The function bodies that read mana-sync's table name it with its schema.
    const bodies = (await db.pool.query(`
      SELECT p.oid::regprocedure::text AS fn, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'mana_ai' AND p.prosrc ~ '\\msync_changes\\M'`)).rows;
    for (const b of bodies) {
      for (const m of b.prosrc.matchAll(/(\S*)\bsync_changes\b/g)) {
        if (/^(FROM|JOIN)$/i.test(m[1] ?? '')) assert.fail(`${b.fn} reads an unqualified sync_changes`);
      }
    }
  });

  it('the migration refuses a definer whose search_path is not pinned', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query(`CREATE FUNCTION mana_ai.bad_definer() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, mana_ai AS $$ SELECT 1 $$`);
      await assert.rejects(c.query('SELECT mana_ai.secure_definers()'), /must pin search_path with pg_temp last/);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });
});
