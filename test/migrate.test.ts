import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { migrate, SQL_DIR } from '../src/db/migrate.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { eventually } from './harness/wait.js';

const dbs: TestDb[] = [];
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

describe('migrations', () => {
  it('two runners started at once on an empty database both succeed, and a third run applies nothing', async () => {
    const db = await createTestDatabase({ migrate: false });
    dbs.push(db);
    const [a, b] = await Promise.all([migrate(db.url), migrate(db.url)]);
    const total = readdirSync(join(SQL_DIR, 'migrations')).filter((f) => f.endsWith('.sql')).length;
    assert.equal(a.applied.length + b.applied.length, total, 'each file applied exactly once');
    const again = await migrate(db.url);
    assert.deepEqual(again.applied, []);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM mana_ai.schema_migrations');
    assert.equal(rows[0].n, total);
  });

  it('refuses to start when an applied file was edited afterwards', async () => {
    const db = await createTestDatabase({ migrate: false });
    dbs.push(db);
    const dir = mkdtempSync(join(tmpdir(), 'mana-ai-sql-'));
    try {
      cpSync(SQL_DIR, dir, { recursive: true });
      await migrate(db.url, { dir });
      writeFileSync(join(dir, 'migrations', '020_baseline.sql'), '-- edited\n', { flag: 'a' });
      await assert.rejects(migrate(db.url, { dir }), /020_baseline\.sql was edited after it was applied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a migration that locks sync_changes waits at most its lock_timeout at a time, so device inserts are never queued behind it for long, and it applies once the table is free (issue 18, item 9)', async () => {
    const db = await createTestDatabase();
    dbs.push(db);
    const dir = mkdtempSync(join(tmpdir(), 'mana-ai-sql-'));
    const device = new pg.Pool({ connectionString: db.writerUrl, max: 3 });
    try {
      cpSync(SQL_DIR, dir, { recursive: true });
      // What 012 did: DDL on mana-sync's table (SHARE ROW EXCLUSIVE conflicts with inserts).
      writeFileSync(join(dir, 'migrations', '999_lock_sync_changes.sql'), 'LOCK TABLE sync_changes IN SHARE ROW EXCLUSIVE MODE;\n');
      // A device transaction stays open with an insert: the migration cannot get its lock.
      const open = await device.connect();
      await open.query('BEGIN');
      await open.query(`SELECT set_config('app.current_user_id', 'u-open', true)`);
      await open.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id) VALUES ('notes','notes','n1','u-open','insert','{}','d')`);
      const logs: string[] = [];
      const migrating = migrate(db.url, { dir, lockTimeoutMs: 200, log: (m) => logs.push(m) });
      await eventually(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai-migrate' AND wait_event_type = 'Lock'`)).rows[0].n === 1, 'the migration waits for its lock');
      // While the migration tries, another device's insert completes: it is
      // queued behind the migration's lock request for at most 200 ms a try.
      for (let i = 0; i < 5; i++) {
        const c = await device.connect();
        try {
          await c.query('BEGIN');
          await c.query(`SELECT set_config('app.current_user_id', 'u-other', true)`);
          const t = Date.now();
          await c.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, client_id) VALUES ('notes','notes','n2','u-other','insert','{}','d')`);
          assert.ok(Date.now() - t < 2_000, `an insert waited ${Date.now() - t} ms behind the migration`);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      }
      await eventually(() => logs.some((l) => /waited 200 ms for a lock/.test(l)), 'the migration gave up once and tries again');
      await open.query('COMMIT');
      open.release();
      const r = await migrating;
      assert.deepEqual(r.applied, ['999_lock_sync_changes.sql']);
      assert.ok(logs.some((l) => /waited 200 ms for a lock/.test(l)), 'it gave up and tried again at least once');
    } finally {
      await device.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
