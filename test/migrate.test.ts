import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { migrate, SQL_DIR } from '../src/db/migrate.js';
import { createTestDatabase, type TestDb } from './harness/db.js';

const dbs: TestDb[] = [];
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

describe('migrations', () => {
  it('two runners started at once on an empty database both succeed, and a third run applies nothing', async () => {
    const db = await createTestDatabase({ migrate: false });
    dbs.push(db);
    const [a, b] = await Promise.all([migrate(db.url), migrate(db.url)]);
    const total = readdirSync(SQL_DIR).filter((f) => f.endsWith('.sql')).length;
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
      writeFileSync(join(dir, '003_views.sql'), '-- edited\n', { flag: 'a' });
      await assert.rejects(migrate(db.url, { dir }), /003_views\.sql was edited after it was applied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
