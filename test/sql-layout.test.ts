// The SQL layout (issue 20, item 1): migrations for tables, one file per
// definition. A database migrated by the first layout (its sql/ kept as
// test/fixtures/legacy-sql, applied the way that release's migrate did)
// and then by this one ends with exactly the catalog a fresh database gets;
// a database of an older release is refused with what to do; a changed
// definition file is applied on its own, an edited migration is refused.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadMigrations, migrate, SQL_DIR } from '../src/db/migrate.js';
import { catalogOf } from './harness/catalog.js';
import { createTestDatabase, RUNTIME_ROLE, type TestDb } from './harness/db.js';

const LEGACY_DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'legacy-sql');
const dbs: TestDb[] = [];
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

/** What the first layout's `npm run migrate -- --runtime-role` did, file by file up to `upTo`. */
async function applyLegacy(url: string, upTo = Number.POSITIVE_INFINITY): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`CREATE SCHEMA IF NOT EXISTS mana_ai`);
    await c.query(`CREATE TABLE IF NOT EXISTS mana_ai.schema_migrations (version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { createHash } = await import('node:crypto');
    for (const file of readdirSync(LEGACY_DIR).filter((f) => /^\d{3}_.*\.sql$/.test(f)).sort()) {
      const version = Number.parseInt(file, 10);
      if (version > upTo) break;
      const sql = readFileSync(join(LEGACY_DIR, file), 'utf8');
      await c.query('BEGIN');
      await c.query(sql);
      await c.query('INSERT INTO mana_ai.schema_migrations VALUES ($1, $2, $3)', [version, file, createHash('sha256').update(sql).digest('hex')]);
      await c.query('COMMIT');
    }
    if (upTo >= 14) await c.query('SELECT mana_ai.secure_definers()');
    if (upTo >= 11) await c.query('SELECT mana_ai.grant_runtime_role($1)', [RUNTIME_ROLE]);
  } finally {
    await c.end();
  }
}

const insertMission = (db: TestDb, user: string, id: string) =>
  db.pool.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     VALUES ('ai', 'aiMissions', $1, $2, 'insert', $3::jsonb, '{}', 'd')`,
    [id, user, JSON.stringify({ title: 't', state: 'active', nextRunAt: '2030-01-01T09:00:00.000Z', cadence: { kind: 'daily', atHour: 9, atMinute: 0 }, updatedAt: '2026-01-01T00:00:00.000Z' })],
  );

describe('the SQL layout', () => {
  it('a database of the first layout, migrated by this one, has exactly the catalog of a fresh database, and keeps its data and trigger', async () => {
    const [old, fresh] = await Promise.all([createTestDatabase({ migrate: false }), createTestDatabase()]);
    dbs.push(old, fresh);
    await applyLegacy(old.url);
    await insertMission(old, 'u-1', 'm-before');
    const logs: string[] = [];
    const r = await migrate(old.url, { log: (m) => logs.push(m) });
    assert.equal(r.baselined, true);
    assert.deepEqual(r.applied, loadMigrations().filter((m) => m.version > 20).map((m) => m.name), 'the baseline is recorded, not run; what came after it is');
    assert.ok(r.defined.includes('functions/claim.sql') && r.defined.includes('triggers/sync-changes.sql'), 'every definition applied once');
    assert.ok(logs.some((l) => /recognised a database of the first layout \(20 migrations\) as 020_baseline\.sql/.test(l)));

    const [a, b] = await Promise.all([catalogOf(old.pool), catalogOf(fresh.pool)]);
    for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `${a[i]!.kind} differ`);
    assert.ok(a.find((p) => p.kind === 'functions')!.lines.length >= 30, 'the comparison saw the functions');

    // Data kept, the trigger folds into the same table.
    await insertMission(old, 'u-1', 'm-after');
    const { rows } = await old.pool.query(`SELECT mission_id FROM mana_ai.mission_snapshots ORDER BY mission_id`);
    assert.deepEqual(rows.map((x) => x.mission_id), ['m-after', 'm-before']);
    const { rows: versions } = await old.pool.query(`SELECT version, name FROM mana_ai.schema_migrations ORDER BY version`);
    assert.deepEqual(versions.map((v) => v.name), loadMigrations().map((m) => m.name));

    const again = await migrate(old.url);
    assert.deepEqual([again.applied, again.defined, again.baselined], [[], [], false], 'a second run changes nothing');
  });

  it('a database of an older release (part of the first layout) is refused with what to run first, and left as it was', async () => {
    const db = await createTestDatabase({ migrate: false });
    dbs.push(db);
    await applyLegacy(db.url, 13);
    await assert.rejects(migrate(db.url), /older release of mana-ai .* lacks 014_definer_hardening\.sql, .*020_parked_missions\.sql/);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.schema_migrations`);
    assert.equal(rows[0].n, 13);
  });

  it('a changed definition file is applied alone (with what requires it); an unchanged layout applies nothing', async () => {
    const db = await createTestDatabase();
    dbs.push(db);
    const dir = mkdtempSync(join(tmpdir(), 'mana-ai-sql-'));
    try {
      cpSync(SQL_DIR, dir, { recursive: true });
      assert.deepEqual((await migrate(db.url, { dir })).defined, [], 'same files as the fresh migrate: nothing to do');
      // A view that requires another is re-applied when the other changes.
      writeFileSync(join(dir, 'views', 'zz-due-count.sql'), '-- requires: views/due-missions.sql\nCREATE OR REPLACE VIEW mana_ai.zz_due_count AS SELECT count(*) AS n FROM mana_ai.due_missions;\n');
      assert.deepEqual((await migrate(db.url, { dir })).defined, ['views/zz-due-count.sql']);
      const view = join(dir, 'views', 'due-missions.sql');
      writeFileSync(view, readFileSync(view, 'utf8').replace('now() - s.next_run_at                 AS overdue_by', 'now() - s.next_run_at AS overdue_by'));
      const r = await migrate(db.url, { dir });
      assert.deepEqual(r.defined, ['views/due-missions.sql', 'views/zz-due-count.sql']);
      assert.deepEqual(r.granted, [RUNTIME_ROLE], 'the runtime role keeps its rights on what was replaced');
      const { rows } = await db.pool.query(`SELECT checksum FROM mana_ai.schema_definitions WHERE name = 'views/due-missions.sql'`);
      assert.equal(rows.length, 1);
      // A definition that fails names its file and leaves every other as it was.
      writeFileSync(join(dir, 'functions', 'merge.sql'), readFileSync(join(dir, 'functions', 'merge.sql'), 'utf8') + '\nSELECT no_such_function();\n');
      await assert.rejects(migrate(db.url, { dir }), /sql\/functions\/merge\.sql failed: function no_such_function\(\) does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
