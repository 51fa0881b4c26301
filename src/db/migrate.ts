// Brings the mana_ai schema to what this build ships, under an advisory
// lock so that daemons booting at once do not race:
//  1. a database migrated by the first layout (sql/migrations/legacy.json)
//     is recognised as having the baseline;
//  2. in ONE transaction: the numbered migrations it has not applied (an
//     applied one edited later stops the start with a message that says
//     what to do); mana-sync's table recorded and verified (sync-table.ts);
//     the definitions whose text changed (a checksum per file, placeholders
//     filled in) or whose objects the catalog lacks, in the order
//     sql-files.ts gives, every definition after a migration was applied;
//     secure_definers; every runtime role's grants. A failure anywhere
//     leaves nothing half done, and the next run finds all it owes by
//     looking at the catalog, not only at the checksums (issue 27, item 7).
// Never edits or reorders an applied migration itself; every statement
// that may wait for a lock on mana-sync's table waits at most lockTimeoutMs
// at a time and is retried.

import pg from 'pg';
import { insecureDefiners, mergeRuleOf, missingObjects, planDefinitions, recordedDefinitions, type MergeRule, type Queryable } from './definitions.js';
import { ensureSyncTable, recordedSyncTable, verifySyncTable } from './sync-table.js';
import { loadLegacy, loadMigrations, MigrationError, SQL_DIR, withDependents, type Legacy } from './sql-files.js';
import { coerceError } from '../coerce-error.js';

export { loadMigrations, MigrationError, SQL_DIR } from './sql-files.js';
export type { MergeRule } from './definitions.js';

/** Any constant works; it only has to be the same for every daemon. */
const MIGRATION_LOCK_KEY = 7_134_029_117;

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
  /** definition files (re)applied, e.g. `functions/claim.sql` */
  defined: string[];
  /** runtime roles whose grants were (re)applied */
  granted: string[];
  /** true when a database of the first layout was recognised as having the baseline in this run */
  baselined: boolean;
}

/**
 * What this build would still change, and the merge rule the database
 * folds with, read-only on one connection (no lock, no DDL): what the
 * daemon checks at start, so its runtime role needs no right to change the
 * schema. Verifies rather than trusts: besides migrations and changed
 * definitions, mana-sync's table as recorded (sync-table.ts), objects a
 * definition creates that the catalog lacks, and definers that are not
 * secured are pending too. Null when the schema is missing.
 */
export async function schemaStatus(connectionString: string, dir?: string): Promise<{ pending: string[]; mergeRule: MergeRule } | null> {
  const migrations = loadMigrations(dir);
  const legacy = loadLegacy(dir);
  const client = new pg.Client({ connectionString, application_name: 'mana-ai-migrate' });
  await client.connect();
  try {
    const exists = await client.query(`SELECT to_regclass('mana_ai.schema_migrations') IS NOT NULL AS ok`);
    if (!exists.rows[0].ok) return null;
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM mana_ai.schema_migrations');
    if (legacy && isLegacyDatabase(rows, legacy)) return { pending: ['baseline (a database of the first layout)'], mergeRule: await mergeRuleOf(client) };
    const applied = new Map(rows.map((r) => [r.version, r.checksum]));
    const pending = migrations.filter((m) => applied.get(m.version) !== m.checksum).map((m) => m.name);
    const mergeRule = await mergeRuleOf(client);
    if (pending.length > 0) return { pending, mergeRule };
    const table = await recordedSyncTable(client);
    if (!table) return { pending: ["mana-sync's table is not recorded (mana_ai.sync_table)"], mergeRule };
    const problems = await verifySyncTable(client, table);
    if (problems.length > 0) return { pending: problems, mergeRule };
    const plan = await planDefinitions(client, dir, await recordedDefinitions(client), table);
    const missing = await missingObjects(client, plan.all);
    return {
      pending: [
        ...plan.all.filter((d) => plan.changed.has(d.def.name)).map((d) => d.def.name),
        ...[...missing].map(([file, what]) => `${file} (missing: ${what.join(', ')})`),
        ...(await insecureDefiners(client)),
      ],
      mergeRule,
    };
  } finally {
    await client.end().catch(() => {});
  }
}

function isLegacyDatabase(rows: { version: number; name: string; checksum: string }[], legacy: Legacy): boolean {
  const byVersion = new Map(legacy.files.map((f) => [f.version, f]));
  return rows.some((r) => byVersion.get(r.version)?.name === r.name && byVersion.get(r.version)?.checksum === r.checksum);
}

/**
 * One step of the migration's transaction: a lock wait is rethrown as it
 * is (inLockedTransaction retries the whole transaction), anything else
 * names the step, with Postgres's hint when it gave one.
 */
async function step(what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    const e = error as Error & { code?: string; hint?: string };
    if (e.code === '55P03' || error instanceof MigrationError) throw error;
    throw new MigrationError(`${what} failed: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
  }
}

/** Runs `body` in a transaction with a lock_timeout; retried while it only waited for a lock. */
async function inLockedTransaction(
  client: Queryable,
  what: string,
  opts: { lockTimeoutMs: number; lockAttempts: number; log?: (msg: string) => void },
  body: () => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN');
    try {
      // A lock on mana-sync's table (a trigger, an index) queues every
      // app's insert behind it while it waits: it waits at most
      // lockTimeoutMs, gives up and is tried again (docs/ops.md).
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(opts.lockTimeoutMs))}`);
      await body();
      await client.query('COMMIT');
      return;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      if ((error as { code?: string }).code === '55P03' && attempt < opts.lockAttempts) {
        opts.log?.(`${what} waited ${opts.lockTimeoutMs} ms for a lock (attempt ${attempt} of ${opts.lockAttempts}); trying again`);
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
        continue;
      }
      if (error instanceof MigrationError) throw error;
      throw new MigrationError(`${what} failed: ${coerceError(error).message}`);
    }
  }
}

/**
 * A database the first layout migrated: all of its files applied, unedited,
 * means it has exactly the baseline; their rows give way to the baseline's.
 * Part of them means an older release's database: it must take that
 * release's remaining migrations first (they are not shipped any more).
 */
async function recogniseLegacy(
  client: Queryable,
  legacy: Legacy,
  baseline: { version: number; name: string; checksum: string },
  log?: (msg: string) => void,
): Promise<boolean> {
  const { rows } = await client.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM mana_ai.schema_migrations');
  if (!isLegacyDatabase(rows, legacy)) return false;
  const have = new Map(rows.map((r) => [r.version, r]));
  const missing = legacy.files.filter((f) => have.get(f.version)?.checksum !== f.checksum);
  if (missing.length > 0) {
    throw new MigrationError(
      `this database was migrated by an older release of mana-ai (the first SQL layout) and lacks ${missing.map((f) => f.name).join(', ')}. ` +
        `Run \`npm run migrate\` of the last release with that layout (sql/0NN_*.sql files, up to ${legacy.files.at(-1)!.name}) first, then this one.`,
    );
  }
  await client.query('BEGIN');
  try {
    await client.query('DELETE FROM mana_ai.schema_migrations WHERE version = ANY($1::int[])', [legacy.files.map((f) => f.version)]);
    await client.query('INSERT INTO mana_ai.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [baseline.version, baseline.name, baseline.checksum]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw new MigrationError(`recording the baseline failed: ${coerceError(error).message}`);
  }
  log?.(`recognised a database of the first layout (${legacy.files.length} migrations) as ${baseline.name}`);
  return true;
}

export async function migrate(
  connectionString: string,
  opts: {
    dir?: string;
    log?: (msg: string) => void;
    runtimeRole?: string;
    lockTimeoutMs?: number;
    lockAttempts?: number;
    /** the webapp generation whose merge rule the fold applies from now on; unset keeps the database's */
    webapp?: MergeRule;
    /** mana-sync's table as `schema.table`: recorded instead of the only permanent sync_changes (sync-table.ts) */
    syncTable?: string;
  } = {},
): Promise<MigrateResult> {
  const dir = opts.dir ?? SQL_DIR;
  const migrations = loadMigrations(dir);
  const legacy = loadLegacy(dir);
  const tx = { lockTimeoutMs: opts.lockTimeoutMs ?? 2_000, lockAttempts: opts.lockAttempts ?? 30, ...(opts.log ? { log: opts.log } : {}) };
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
      await client.query(`
        CREATE TABLE IF NOT EXISTS mana_ai.schema_definitions (
          name       text PRIMARY KEY,
          checksum   text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);

      let baselined = false;
      if (legacy) {
        const baseline = migrations.find((m) => m.version === legacy.baseline);
        if (!baseline) throw new MigrationError(`sql/migrations/legacy.json names baseline ${legacy.baseline}, which is not shipped`);
        baselined = await recogniseLegacy(client, legacy, baseline, opts.log);
      }

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
            `sql/migrations/${file.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ` +
              `${file.checksum.slice(0, 12)} on disk). Applied migrations are immutable: restore the file and put the change in a new numbered file ` +
              `(functions, views, triggers and grants are not migrations: edit their file under sql/ and run migrate).`,
          );
        }
      }
      const done = new Set(rows.map((r) => r.version));
      const known = await client.query<{ role_name: string }>(`SELECT role_name FROM mana_ai.runtime_roles`).catch(() => ({ rows: [] as { role_name: string }[] }));
      const roles = [...new Set<string>([...(opts.runtimeRole ? [opts.runtimeRole] : []), ...known.rows.map((r) => r.role_name)])];
      let applied: string[] = [];
      let defined: string[] = [];
      const notes: string[] = [];
      await inLockedTransaction(client, 'the migration', tx, async () => {
        applied = [];
        notes.length = 0;
        for (const m of migrations) {
          if (done.has(m.version)) continue;
          await step(`migration ${m.name}`, () => client.query(m.sql));
          await client.query('INSERT INTO mana_ai.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
          applied.push(m.name);
        }

        // The merge rule, before the definitions that it is filled into.
        if (opts.webapp) {
          const before = await mergeRuleOf(client);
          if (before !== opts.webapp) {
            await client.query(
              `INSERT INTO mana_ai.settings (key, value) VALUES ('merge_rule', $1)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
              [opts.webapp],
            );
            notes.push(`the fold applies the ${opts.webapp} merge rule from now on (was ${before}); snapshots folded before keep the old rule until \`npm run backfill -- --restart\` refolds them`);
          }
        }

        const table = await ensureSyncTable(client, { ...(opts.syncTable ? { configured: opts.syncTable } : {}), log: (msg) => notes.push(msg) });

        // Definitions: every one after a migration (a migration may have
        // dropped what one defines) or on a database of the first layout;
        // else those whose text changed or whose objects the catalog
        // lacks, and what requires them.
        const plan = await planDefinitions(client, dir, await recordedDefinitions(client), table);
        const missing = await missingObjects(client, plan.all);
        const due = new Set(withDependents(plan.all.map((d) => d.def), new Set([...plan.changed, ...missing.keys()])).map((d) => d.name));
        const toApply = applied.length > 0 || baselined ? plan.all : plan.all.filter((d) => due.has(d.def.name));
        // Bodies refer to functions of files applied later in this transaction.
        await client.query('SET LOCAL check_function_bodies = off');
        for (const d of toApply) {
          await step(`sql/${d.def.name}`, () => client.query(d.sql));
          await client.query(
            `INSERT INTO mana_ai.schema_definitions (name, checksum) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
            [d.def.name, d.checksum],
          );
        }
        await client.query('DELETE FROM mana_ai.schema_definitions WHERE NOT (name = ANY($1::text[]))', [plan.all.map((d) => d.def.name)]);
        defined = toApply.map((d) => d.def.name);

        // Every SECURITY DEFINER function pinned, owned by a non-superuser
        // and closed to PUBLIC: checked on every run, so a function added
        // later, or a run that failed before this step, is covered at once.
        await step('securing the SECURITY DEFINER functions', () => client.query('SELECT mana_ai.secure_definers()'));
        // Grants follow the schema: the role named now and every role named
        // before, on every run (idempotent), so a new table or a run that
        // failed before this step never leaves a daemon without its rights.
        for (const role of roles) await step(`granting the runtime role ${role}`, () => client.query('SELECT mana_ai.grant_runtime_role($1)', [role]));
      });
      for (const m of applied) opts.log?.(`applied ${m}`);
      for (const n of notes) opts.log?.(n);
      for (const d of defined) opts.log?.(`defined ${d}`);
      for (const role of roles) opts.log?.(`granted the runtime rights to ${role}`);
      const granted = roles;
      return { applied, alreadyApplied: rows.length, defined, granted, baselined };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}
