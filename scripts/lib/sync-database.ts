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
