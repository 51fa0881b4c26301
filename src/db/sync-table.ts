// mana-sync's table, as the runner trusts it: recorded once in
// mana_ai.sync_table (sql/migrations/022_trusted_catalog.sql) and verified on
// every migrate and daemon start. Never found by a name another role can
// create: before 022 "the" table was the one a trigger named
// mana_ai_mission_snapshot was on, and any role may create a temporary
// table with a trigger of that name (issue 27, item 1).
//
// Recording: the table migrate is told (`--sync-table schema.table`), else
// the only permanent table named sync_changes outside temporary schemas;
// two candidates are refused. Verifying: it exists under the recorded
// schema and name, is permanent, has the recorded owner, row-level
// security enabled and forced, and the columns the runner reads and
// writes. Reads the catalog only; the one write is the record itself.

import type pg from 'pg';
import { MigrationError } from './sql-files.js';

export interface SyncTable {
  schema: string;
  name: string;
  owner: string;
}

/** Columns the runner reads or writes (CONTRACT.md sections 2 and 12); the map is either name. */
const REQUIRED_COLUMNS = ['id', 'app_id', 'table_name', 'record_id', 'user_id', 'op', 'data', 'client_id', 'created_at', 'actor'];

/** For messages; SQL gets the name quoted by Postgres (format('%I.%I')). */
export const qualified = (t: Pick<SyncTable, 'schema' | 'name'>): string => `${t.schema}.${t.name}`;

/** `schema.table` or `table` (schema public) as typed by an operator. */
export function parseTableName(text: string): { schema: string; name: string } {
  const parts = text.split('.');
  if (parts.length > 2 || parts.some((p) => p.length === 0)) throw new MigrationError(`--sync-table ${text}: expected schema.table`);
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { schema: 'public', name: parts[0]! };
}

export async function recordedSyncTable(client: pg.ClientBase): Promise<SyncTable | null> {
  const exists = await client.query(`SELECT to_regclass('mana_ai.sync_table') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return null;
  const { rows } = await client.query<{ schema_name: string; table_name: string; owner_name: string }>(
    'SELECT schema_name, table_name, owner_name FROM mana_ai.sync_table',
  );
  const r = rows[0];
  return r ? { schema: r.schema_name, name: r.table_name, owner: r.owner_name } : null;
}

/** Permanent tables named sync_changes outside temporary and system schemas, by schema name. */
async function candidates(client: pg.ClientBase, want?: { schema: string; name: string }): Promise<SyncTable[]> {
  const { rows } = await client.query<{ schema: string; name: string; owner: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_userbyid(c.relowner) AS owner
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
        AND n.nspname !~ '^pg_(toast_)?temp_' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND c.relname = $1 AND ($2::text IS NULL OR n.nspname = $2)
      ORDER BY n.nspname`,
    [want?.name ?? 'sync_changes', want?.schema ?? null],
  );
  return rows;
}

/** What is wrong with the recorded table as it stands; empty when nothing is. */
export async function verifySyncTable(client: pg.ClientBase, t: SyncTable): Promise<string[]> {
  const { rows } = await client.query<{
    persistence: string; kind: string; owner: string; rls: boolean; forced: boolean; columns: string[];
  }>(
    `SELECT c.relpersistence AS persistence, c.relkind AS kind, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
            c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
            ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND n.nspname !~ '^pg_(toast_)?temp_'`,
    [t.schema, t.name],
  );
  const r = rows[0];
  const where = `mana-sync's table ${qualified(t)} (recorded in mana_ai.sync_table)`;
  if (!r) return [`${where} does not exist`];
  const problems: string[] = [];
  if (r.persistence !== 'p' || !['r', 'p'].includes(r.kind)) problems.push(`${where} is not a permanent table`);
  if (r.owner !== t.owner) problems.push(`${where} is owned by ${r.owner}, recorded as ${t.owner}`);
  if (!r.rls || !r.forced) problems.push(`${where} does not have row-level security enabled and forced`);
  const missing = REQUIRED_COLUMNS.filter((c) => !r.columns.includes(c));
  if (!r.columns.includes('field_timestamps') && !r.columns.includes('field_meta')) missing.push('field_timestamps or field_meta');
  if (missing.length > 0) problems.push(`${where} lacks the columns ${missing.join(', ')}`);
  return problems;
}

/**
 * The table to trust: the recorded one, verified; on a database that has
 * none recorded, the configured or only candidate, verified and recorded.
 * A configured table that differs from the recorded one replaces it (the
 * operator said so). Throws a MigrationError that says what to do.
 */
export async function ensureSyncTable(
  client: pg.ClientBase,
  opts: { configured?: string; log?: (msg: string) => void } = {},
): Promise<SyncTable> {
  const recorded = await recordedSyncTable(client);
  const want = opts.configured ? parseTableName(opts.configured) : undefined;
  if (recorded && (!want || (want.schema === recorded.schema && want.name === recorded.name))) {
    const problems = await verifySyncTable(client, recorded);
    if (problems.length > 0) throw new MigrationError(`${problems.join('; ')}. Fix the table, or record another with \`npm run migrate -- --sync-table schema.table\``);
    return recorded;
  }
  const found = await candidates(client, want);
  if (found.length === 0) {
    throw new MigrationError(
      want
        ? `--sync-table ${opts.configured}: no permanent table of that name`
        : `mana-sync's table sync_changes was not found (no permanent table of that name outside temporary schemas); create it (mana-sync's migrations) first, or name it with --sync-table schema.table`,
    );
  }
  if (found.length > 1) {
    throw new MigrationError(`more than one permanent table named sync_changes (${found.map(qualified).join(', ')}); name mana-sync's with \`npm run migrate -- --sync-table schema.table\``);
  }
  const t = found[0]!;
  const problems = await verifySyncTable(client, t);
  if (problems.length > 0) throw new MigrationError(problems.join('; ').replace(/ \(recorded in mana_ai.sync_table\)/g, ''));
  await client.query(
    `INSERT INTO mana_ai.sync_table (singleton, schema_name, table_name, owner_name, recorded_by) VALUES (true, $1, $2, $3, $4)
     ON CONFLICT (singleton) DO UPDATE SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name,
       owner_name = EXCLUDED.owner_name, recorded_by = EXCLUDED.recorded_by, recorded_at = now()`,
    [t.schema, t.name, t.owner, want ? 'configuration' : 'install'],
  );
  opts.log?.(`recorded mana-sync's table: ${qualified(t)} (owner ${t.owner})${recorded ? `, was ${qualified(recorded)}` : ''}`);
  return t;
}
