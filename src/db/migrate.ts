// Applies the numbered files in sql/ in order, each in its own transaction,
// under an advisory lock so that daemons booting at once do not race.
// Applied files are recorded with a SHA-256; an applied file edited later
// stops the start with a message that says what to do. Never edits or
// reorders an applied migration itself.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** Any constant works; it only has to be the same for every daemon. */
const MIGRATION_LOCK_KEY = 7_134_029_117;

export const SQL_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

export function loadMigrations(dir = SQL_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{3,}_[\w-]+\.sql$/.test(f)).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const version = Number.parseInt(file.split('_')[0]!, 10);
    if (seen.has(version)) throw new MigrationError(`two files in ${dir} share migration number ${version}`);
    seen.add(version);
    const sql = readFileSync(join(dir, file), 'utf8');
    return { version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
  /** runtime roles whose grants were (re)applied (sql/011) */
  granted: string[];
}

/**
 * Migrations this build ships that the database has not applied, read-only
 * (no lock, no DDL): what the daemon checks at start, so its runtime role
 * needs no right to change the schema. Null when the schema is missing.
 */
export async function pendingMigrations(connectionString: string, dir?: string): Promise<string[] | null> {
  const migrations = loadMigrations(dir);
  const client = new pg.Client({ connectionString, application_name: 'mana-ai-migrate' });
  await client.connect();
  try {
    const exists = await client.query(`SELECT to_regclass('mana_ai.schema_migrations') IS NOT NULL AS ok`);
    if (!exists.rows[0].ok) return null;
    const { rows } = await client.query<{ version: number; checksum: string }>('SELECT version, checksum FROM mana_ai.schema_migrations');
    const applied = new Map(rows.map((r) => [r.version, r.checksum]));
    return migrations.filter((m) => applied.get(m.version) !== m.checksum).map((m) => m.name);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function migrate(
  connectionString: string,
  opts: { dir?: string; log?: (msg: string) => void; runtimeRole?: string; lockTimeoutMs?: number; lockAttempts?: number } = {},
): Promise<MigrateResult> {
  const migrations = loadMigrations(opts.dir);
  const lockTimeoutMs = opts.lockTimeoutMs ?? 2_000;
  const lockAttempts = opts.lockAttempts ?? 30;
  const client = new pg.Client({ connectionString, application_name: 'mana-ai-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS mana_ai`);
      await client.query(`
        CREATE TABLE IF NOT EXISTS mana_ai.schema_migrations (
          version    int PRIMARY KEY,
          name       text NOT NULL,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM mana_ai.schema_migrations ORDER BY version',
      );
      const byVersion = new Map(migrations.map((m) => [m.version, m]));
      for (const row of rows) {
        const file = byVersion.get(row.version);
        if (!file) {
          opts.log?.(`database has migration ${row.version} (${row.name}) that this build does not ship; continuing`);
          continue;
        }
        if (file.checksum !== row.checksum) {
          throw new MigrationError(
            `sql/${file.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ` +
              `${file.checksum.slice(0, 12)} on disk). Applied migrations are immutable: restore the file and put the change in a new numbered file.`,
          );
        }
      }
      const done = new Set(rows.map((r) => r.version));
      const applied: string[] = [];
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        for (let attempt = 1; ; attempt++) {
          await client.query('BEGIN');
          try {
            // A lock on mana-sync's table (a trigger, an index) queues every
            // app's insert behind it while it waits: it waits at most
            // lockTimeoutMs, gives up and is tried again (docs/ops.md).
            await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
            await client.query(m.sql);
            await client.query('INSERT INTO mana_ai.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
              m.version,
              m.name,
              m.checksum,
            ]);
            await client.query('COMMIT');
            break;
          } catch (error) {
            await client.query('ROLLBACK').catch(() => {});
            if ((error as { code?: string }).code === '55P03' && attempt < lockAttempts) {
              opts.log?.(`migration ${m.name} waited ${lockTimeoutMs} ms for a lock (attempt ${attempt} of ${lockAttempts}); trying again`);
              await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
              continue;
            }
            throw new MigrationError(`migration ${m.name} failed: ${(error as Error).message}`);
          }
        }
        applied.push(m.name);
        opts.log?.(`applied ${m.name}`);
      }
      // Every SECURITY DEFINER function pinned and owned by a non-superuser
      // (sql/014): checked after every run, so a function a later
      // migration adds is covered at once.
      const hardened = await client.query(`SELECT to_regprocedure('mana_ai.secure_definers()') IS NOT NULL AS ok`);
      if (hardened.rows[0].ok) {
        try {
          await client.query('SELECT mana_ai.secure_definers()');
        } catch (error) {
          const e = error as Error & { hint?: string };
          throw new MigrationError(`securing the SECURITY DEFINER functions failed: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
        }
      }
      // Grants follow the schema: a role named now, and every role named
      // before whenever a migration was applied (a new table must not leave
      // the daemon without its rights).
      const granted: string[] = [];
      const roles = new Set<string>(opts.runtimeRole ? [opts.runtimeRole] : []);
      if (applied.length > 0) {
        const known = await client.query<{ role_name: string }>(`SELECT role_name FROM mana_ai.runtime_roles`).catch(() => ({ rows: [] }));
        for (const r of known.rows) roles.add(r.role_name);
      }
      for (const role of roles) {
        try {
          await client.query('SELECT mana_ai.grant_runtime_role($1)', [role]);
        } catch (error) {
          const e = error as Error & { hint?: string };
          throw new MigrationError(`granting the runtime role ${role} failed: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
        }
        granted.push(role);
        opts.log?.(`granted the runtime rights to ${role}`);
      }
      return { applied, alreadyApplied: rows.length, granted };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}
