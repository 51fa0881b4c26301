// Issue 27, items 1 and 7 and the definer hygiene "found by reading":
// nothing the runner trusts is found by a name another role can create,
// and the schema check verifies the catalog instead of trusting recorded
// checksums.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrate, schemaStatus, SQL_DIR } from '../src/db/migrate.js';
import { createTestDatabase, MERGE_RULE, RUNTIME_ROLE, type TestDb } from './harness/db.js';
import { pushAgent } from './harness/agents.js';
import { startTestDaemon } from './harness/daemon.js';
import { startLlmServer } from './harness/llm-server.js';

const dbs: TestDb[] = [];
let db: TestDb;
before(async () => {
  db = await createTestDatabase();
  dbs.push(db);
});
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

const syncSchemaTable = async (d: TestDb) => (await d.pool.query(`SELECT mana_ai.sync_schema() ->> 'table' AS t`)).rows[0].t as string;

describe("mana-sync's table, recorded and verified", () => {
  it("a temporary table with a trigger of our trigger's name, held open by mana-sync's role, changes nothing a migrate or a start trusts", async () => {
    const attacker = new pg.Client({ connectionString: db.writerUrl });
    await attacker.connect();
    try {
      await attacker.query(`CREATE TEMP TABLE x (LIKE public.sync_changes INCLUDING DEFAULTS)`);
      await attacker.query(`CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
      await attacker.query(`CREATE TRIGGER mana_ai_mission_snapshot AFTER INSERT ON pg_temp.x FOR EACH ROW EXECUTE FUNCTION pg_temp.noop()`);
      // the next migrate re-applies the trigger file (as after any upgrade of it)
      await db.pool.query(`DELETE FROM mana_ai.schema_definitions WHERE name = 'triggers/sync-changes.sql'`);
      const status = await schemaStatus(db.daemonUrl);
      assert.deepEqual(status?.pending, ['triggers/sync-changes.sql']);
      await migrate(db.url);
      assert.equal(await syncSchemaTable(db), 'public.sync_changes');
      assert.deepEqual((await schemaStatus(db.daemonUrl))?.pending, [], 'a (re)started daemon finds nothing pending');
      const onTemp = await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid
          WHERE p.pronamespace = 'mana_ai'::regnamespace AND c.relnamespace <> 'mana_ai'::regnamespace AND t.tgrelid <> 'public.sync_changes'::regclass`);
      assert.equal(onTemp.rows[0].n, 0, 'no trigger of ours on any other table');
      // an insert into the attacker's table writes no snapshot for anyone
      await attacker.query(`INSERT INTO pg_temp.x (app_id, table_name, record_id, user_id, op, data, client_id)
                            VALUES ('ai', 'aiMissions', 'm-evil', 'victim', 'insert', '{"title":"x","state":"active","cadence":{"kind":"interval","everyMinutes":1}}', 'd')`);
      const snaps = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.mission_snapshots WHERE user_id = 'victim'`);
      assert.equal(snaps.rows[0].n, 0);
    } finally {
      await attacker.end();
    }
  });

  it('a second permanent sync_changes is refused on a new install unless one is named; a table that loses forced RLS stops migrate and the start check', async () => {
    const fresh = await createTestDatabase({ migrate: false });
    dbs.push(fresh);
    await fresh.pool.query(`CREATE SCHEMA other; CREATE TABLE other.sync_changes (LIKE public.sync_changes INCLUDING ALL)`);
    await assert.rejects(migrate(fresh.url), /more than one permanent table named sync_changes \(other\.sync_changes, public\.sync_changes\)/);
    assert.equal((await fresh.pool.query(`SELECT to_regclass('mana_ai.sync_table') AS t`)).rows[0].t, null, 'nothing of the failed run stays');
    await migrate(fresh.url, { syncTable: 'public.sync_changes', runtimeRole: RUNTIME_ROLE });
    assert.deepEqual((await fresh.pool.query(`SELECT schema_name, table_name, recorded_by FROM mana_ai.sync_table`)).rows, [
      { schema_name: 'public', table_name: 'sync_changes', recorded_by: 'configuration' },
    ]);
    await migrate(fresh.url); // the record stands; the second table changes nothing now
    await fresh.pool.query(`ALTER TABLE public.sync_changes NO FORCE ROW LEVEL SECURITY`);
    const status = await schemaStatus(fresh.daemonUrl);
    assert.match(status!.pending.join('\n'), /row-level security enabled and forced/);
    await assert.rejects(migrate(fresh.url), /row-level security enabled and forced/);
    await fresh.pool.query(`ALTER TABLE public.sync_changes FORCE ROW LEVEL SECURITY`);
    assert.deepEqual((await schemaStatus(fresh.daemonUrl))?.pending, []);
  });
});

describe('the schema check verifies, not trusts', () => {
  it('a view a migration dropped with CASCADE is pending for the start check and re-created by the next migrate, although its checksum is recorded', async () => {
    await db.pool.query(`DROP VIEW mana_ai.due_missions CASCADE`);
    const status = await schemaStatus(db.daemonUrl);
    assert.ok(status!.pending.some((p) => /views\/due-missions\.sql \(missing: view mana_ai\.due_missions\)/.test(p)), status!.pending.join('; '));
    const r = await migrate(db.url);
    assert.ok(r.defined.includes('views/due-missions.sql'));
    assert.notEqual((await db.pool.query(`SELECT to_regclass('mana_ai.due_missions') AS v`)).rows[0].v, null);
    assert.deepEqual((await schemaStatus(db.daemonUrl))?.pending, []);
  });

  it('a failed definition leaves the migration before it undone, so the rerun after the fix finishes everything (no half-applied upgrade)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mana-ai-sql-'));
    try {
      cpSync(SQL_DIR, dir, { recursive: true });
      writeFileSync(join(dir, 'migrations', '998_drop_view.sql'), 'DROP VIEW mana_ai.mission_schedule CASCADE;\n');
      writeFileSync(join(dir, 'functions', 'zz-broken.sql'), 'CREATE OR REPLACE FUNCTION mana_ai.zz_broken() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\nSELECT mana_ai.no_such_function();\n');
      await assert.rejects(migrate(db.url, { dir }), /zz-broken\.sql failed/);
      assert.notEqual((await db.pool.query(`SELECT to_regclass('mana_ai.mission_schedule') AS v`)).rows[0].v, null, 'the migration that dropped it is undone');
      assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.schema_migrations WHERE version = 998`)).rows[0].n, 0);
      writeFileSync(join(dir, 'functions', 'zz-broken.sql'), 'CREATE OR REPLACE FUNCTION mana_ai.zz_broken() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n');
      const r = await migrate(db.url, { dir });
      assert.deepEqual(r.applied, ['998_drop_view.sql']);
      assert.notEqual((await db.pool.query(`SELECT to_regclass('mana_ai.mission_schedule') AS v`)).rows[0].v, null, 're-created after the migration');
      assert.deepEqual((await schemaStatus(db.daemonUrl, dir))?.pending, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await db.pool.query(`DROP FUNCTION IF EXISTS mana_ai.zz_broken()`);
    }
  });

  it('a definer open to PUBLIC or owned by a superuser is pending and fixed by migrate; one granted to a stranger is refused', async () => {
    await db.pool.query(`GRANT EXECUTE ON FUNCTION mana_ai.repair_snapshot_error(bigint) TO PUBLIC`);
    await db.pool.query(`ALTER FUNCTION mana_ai.lock_snapshot_for_write_back(bigint, int) OWNER TO CURRENT_USER`);
    const status = await schemaStatus(db.daemonUrl);
    const pending = status!.pending.join('\n');
    assert.match(pending, /repair_snapshot_error\(bigint\) executable by PUBLIC/);
    assert.match(pending, /lock_snapshot_for_write_back\(bigint,integer\) owned by a superuser/);
    await migrate(db.url);
    assert.deepEqual((await schemaStatus(db.daemonUrl))?.pending, []);
    await db.pool.query(`GRANT EXECUTE ON FUNCTION mana_ai.repair_snapshot_error(bigint) TO mana_sync_writer`);
    try {
      await assert.rejects(migrate(db.url), /repair_snapshot_error\(bigint\) may be executed by mana_sync_writer/);
    } finally {
      await db.pool.query(`REVOKE EXECUTE ON FUNCTION mana_ai.repair_snapshot_error(bigint) FROM mana_sync_writer`);
    }
  });
});

describe('views over row-level security', () => {
  it("agent_budget reads token_usage as its caller: the runtime role sees a user's usage only in that user's scope", async () => {
    await pushAgent(db.pool, 'u-view', 'ag-view');
    await db.pool.query(`INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used) VALUES ('u-view', 'ag-view', 'm', 777)`);
    const runtime = new pg.Client({ connectionString: db.daemonUrl });
    await runtime.connect();
    try {
      const outside = await runtime.query(`SELECT used_24h FROM mana_ai.agent_budget WHERE user_id = 'u-view'`);
      assert.equal(Number(outside.rows[0].used_24h), 0, 'outside the user\'s scope the view shows none of its usage');
      await runtime.query('BEGIN');
      await runtime.query(`SELECT set_config('app.current_user_id', 'u-view', true)`);
      const inside = await runtime.query(`SELECT used_24h FROM mana_ai.agent_budget WHERE user_id = 'u-view'`);
      await runtime.query('COMMIT');
      assert.equal(Number(inside.rows[0].used_24h), 777);
    } finally {
      await runtime.end();
    }
  });
});

describe('the merge rule is the database\'s', () => {
  it('a daemon that may migrate but serves the other generation reports the mismatch and never rewrites the rule (a rolling deploy must not flip it)', async () => {
    const other = MERGE_RULE === 'head' ? 'v0.4' : 'head';
    const rule = async () => (await db.pool.query(`SELECT coalesce((SELECT value FROM mana_ai.settings WHERE key = 'merge_rule'), 'v0.4') AS r`)).rows[0].r;
    assert.equal(await rule(), MERGE_RULE);
    const llm = await startLlmServer();
    const d = await startTestDaemon(db.url, llm.url, { MANA_AI_WEBAPP: other });
    try {
      assert.equal(await rule(), MERGE_RULE, 'unchanged by a daemon with the rights to change it');
      assert.ok(d.logs.some((l) => l.includes(`npm run migrate -- --webapp ${other}`)), 'the mismatch is said with the command');
    } finally {
      await d.stop();
      await llm.close();
    }
  });
});
