// A fresh database per test file on the run's Postgres (see scripts/test.ts):
// mana-sync's table from the project's own fixture, the project's
// migrations, and the `mana_sync_writer` role with the rights mana-sync has
// (a non-superuser, so row-level security applies to it).

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { createPool } from '../../src/db/pool.js';

/**
 * Which of mana-sync's schemas the test databases get: the seed's (CONTRACT.md
 * section 2, the default) or today's (section 12: field_meta, origin,
 * space_id, the space members' read policy). test/head-schema/ runs the
 * database-level tests again with `head`.
 */
export const SYNC_SCHEMA: 'seed' | 'head' = process.env['MANA_AI_TEST_SYNC_SCHEMA'] === 'head' ? 'head' : 'seed';
/** The merge rule the test databases fold with (`npm run migrate -- --webapp`); test/head-rule/ runs with `head`. */
export const MERGE_RULE: 'v0.4' | 'head' = process.env['MANA_AI_TEST_MERGE_RULE'] === 'head' ? 'head' : 'v0.4';
/** The per-field map's column in this run's sync_changes. */
export const FIELD_MAP = SYNC_SCHEMA === 'head' ? 'field_meta' : 'field_timestamps';
const fixture = (schema: 'seed' | 'head') => join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', schema === 'head' ? 'sync_changes_head.sql' : 'sync_changes.sql');
export const WRITER_ROLE = 'mana_sync_writer';
export const WRITER_PASSWORD = 'writer-pw';
/** The daemon's role in tests, as in production: no superuser, no BYPASSRLS, no DDL (sql/grants/runtime-role.sql). */
export const RUNTIME_ROLE = 'mana_ai_runtime';
export const RUNTIME_PASSWORD = 'runtime-pw';

export function serverUrl(): string {
  const url = process.env['MANA_AI_TEST_SERVER_URL'];
  if (!url) {
    throw new Error('No test database server: run the tests through `npm test` (it starts an embedded Postgres), or set TEST_DATABASE_URL.');
  }
  return url;
}

export function withDatabase(url: string, database: string, user?: { name: string; password: string }): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) {
    u.username = user.name;
    u.password = user.password;
  }
  return u.toString();
}

async function ensureRole(admin: pg.Client, role: string, password: string): Promise<void> {
  // Roles are cluster-wide and files run in parallel: tolerate the race.
  await admin.query(`
    DO $$ BEGIN
      CREATE ROLE ${role} LOGIN PASSWORD '${password}' NOSUPERUSER NOBYPASSRLS;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$`);
}

export interface TestDb {
  name: string;
  /** Superuser URL of this database: migrations and assertions only. */
  url: string;
  /** URL as the least-privileged runtime role: what every test daemon connects with. */
  daemonUrl: string;
  /** URL as mana-sync's role: may only select and insert sync_changes. */
  writerUrl: string;
  /** Superuser pool on this database for assertions. */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestDatabase(opts: { migrate?: boolean; webapp?: 'v0.4' | 'head'; syncSchema?: 'seed' | 'head' } = {}): Promise<TestDb> {
  const base = serverUrl();
  const name = `mana_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    await ensureRole(admin, WRITER_ROLE, WRITER_PASSWORD);
    await ensureRole(admin, RUNTIME_ROLE, RUNTIME_PASSWORD);
  } finally {
    await admin.end();
  }
  const url = withDatabase(base, name);
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  try {
    await setup.query(readFileSync(fixture(opts.syncSchema ?? SYNC_SCHEMA), 'utf8'));
    await setup.query(`GRANT USAGE ON SCHEMA public TO ${WRITER_ROLE}`);
    await setup.query(`GRANT SELECT, INSERT ON sync_changes TO ${WRITER_ROLE}`);
  } finally {
    await setup.end();
  }
  if (opts.migrate !== false) await migrate(url, { runtimeRole: RUNTIME_ROLE, webapp: opts.webapp ?? MERGE_RULE });
  const pool = createPool({ connectionString: url, applicationName: 'mana-ai-test', max: 5 });
  return {
    name,
    url,
    daemonUrl: withDatabase(base, name, { name: RUNTIME_ROLE, password: RUNTIME_PASSWORD }),
    writerUrl: withDatabase(base, name, { name: WRITER_ROLE, password: WRITER_PASSWORD }),
    pool,
    async drop() {
      await pool.end().catch(() => {});
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      try {
        await closedSessions(c, name, 3_000);
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * Waits (at most `timeoutMs`) until no session is connected to `database`.
 * A pg.Pool's end() resolves before its connections have closed, and a
 * session that DROP ... WITH (FORCE) terminates makes its client emit an
 * 'error' that its pool re-emits: in a pool without a listener (the tests'
 * device pools), an uncaught exception after the test ended. Sessions still
 * open after the wait (a test that never ended its pool) are terminated by
 * FORCE, as before.
 */
async function closedSessions(admin: pg.Client, database: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database]);
    if (rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}
