// Creates a database on a PostgreSQL server with mana-sync's table (the
// project's fixture) and, unless told otherwise, our migrations: what the
// demo, the benches, the chaos run and the outage test start from.

import { readFileSync } from 'node:fs';
import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';

const FIXTURE = new URL('../../test/fixtures/sync_changes.sql', import.meta.url);

/** Returns the new database's URL (same credentials as `serverUrl`). */
export async function createSyncDatabase(serverUrl: string, name: string, opts: { migrate?: boolean } = {}): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`database name "${name}" must be a plain lower-case identifier`);
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(readFileSync(FIXTURE, 'utf8'));
  } finally {
    await c.end();
  }
  if (opts.migrate !== false) await migrate(url);
  return url;
}

/**
 * Creates (if missing) a least-privileged login role for the daemon, grants
 * it the runtime rights (sql/grants/runtime-role.sql, `npm run migrate -- --runtime-role`) on
 * the database at `databaseUrl`, and returns that database's URL as the role.
 */
export async function createRuntimeRole(databaseUrl: string, role = { name: 'mana_ai_runtime', password: 'runtime-pw' }): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(role.name)) throw new Error(`role name "${role.name}" must be a plain lower-case identifier`);
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    await c.query(`
      DO $$ BEGIN
        CREATE ROLE ${role.name} LOGIN PASSWORD '${role.password.replace(/'/g, "''")}' NOSUPERUSER NOBYPASSRLS;
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
      END $$`);
  } finally {
    await c.end();
  }
  await migrate(databaseUrl, { runtimeRole: role.name });
  const u = new URL(databaseUrl);
  u.username = role.name;
  u.password = role.password;
  return u.toString();
}
