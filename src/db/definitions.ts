// The definitions' side of migrate (docs/schema.md): the values filled
// into their placeholders (mana-sync's table, the merge rule the fold
// applies), their checksums as filled in, and what the database has
// recorded of them. Reads only; migrate.ts applies.

import type pg from 'pg';
import { qualified, type SyncTable } from './sync-table.js';
import { definedObjects, fillPlaceholders, loadDefinitions, MigrationError, sha256, type Definition } from './sql-files.js';

export type Queryable = pg.Client;

export type MergeRule = 'v0.4' | 'head';

/** The merge rule the database folds with (sql/migrations/021_settings.sql); v0.4 when unset. */
export async function mergeRuleOf(client: Queryable): Promise<MergeRule> {
  const exists = await client.query(`SELECT to_regclass('mana_ai.settings') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return 'v0.4';
  const { rows } = await client.query<{ value: string }>(`SELECT value FROM mana_ai.settings WHERE key = 'merge_rule'`);
  return rows[0]?.value === 'head' ? 'head' : 'v0.4';
}

/**
 * The placeholders definitions may use. `sync_changes`: mana-sync's table,
 * qualified: the one recorded in mana_ai.sync_table and verified
 * (sync-table.ts), never looked up by a name. `field_map`: that table's
 * per-field map column (field_meta today, field_timestamps in the seed's
 * schema), which the trigger reads by name (a rename since is caught there
 * and makes this differ, so the next migrate re-applies it). `merge_rule`:
 * the webapp generation whose merge rule the fold applies.
 */
async function placeholders(client: Queryable, table: SyncTable): Promise<Record<string, string>> {
  const { rows } = await client.query<{ name: string; map: string | null }>(`
    SELECT format('%I.%I', n.nspname, c.relname) AS name,
           (SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname IN ('field_meta', 'field_timestamps')
             ORDER BY a.attname = 'field_meta' DESC LIMIT 1) AS map
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relpersistence = 'p'`, [table.schema, table.name]);
  const name = rows[0]?.name;
  if (!name) throw new MigrationError(`mana-sync's table ${qualified(table)} (recorded in mana_ai.sync_table) was not found`);
  // A table with neither column folds every row through the trigger's
  // by-either-name path (sql/functions/snapshot-trigger.sql); the seed's name
  // is as good a guess as any there.
  const fieldMap = rows[0]?.map ?? 'field_timestamps';
  return { sync_changes: name, field_map: fieldMap, merge_rule: await mergeRuleOf(client) };
}

export interface DefinitionPlan {
  /** every file with its filled-in text and checksum, in order */
  all: { def: Definition; sql: string; checksum: string }[];
  /** names whose checksum differs from the database's (or that it lacks) */
  changed: Set<string>;
  /** the merge rule filled in, the database's own */
  mergeRule: MergeRule;
}

export async function planDefinitions(client: Queryable, dir: string | undefined, recorded: Map<string, string>, table: SyncTable): Promise<DefinitionPlan> {
  const values = await placeholders(client, table);
  const all = loadDefinitions(dir).map((def) => {
    const sql = fillPlaceholders(def, values);
    return { def, sql, checksum: sha256(sql) };
  });
  return {
    all,
    changed: new Set(all.filter((d) => recorded.get(d.def.name) !== d.checksum).map((d) => d.def.name)),
    mergeRule: values['merge_rule'] as MergeRule,
  };
}

export async function recordedDefinitions(client: Queryable): Promise<Map<string, string>> {
  const exists = await client.query(`SELECT to_regclass('mana_ai.schema_definitions') IS NOT NULL AS ok`);
  if (!exists.rows[0].ok) return new Map();
  const { rows } = await client.query<{ name: string; checksum: string }>('SELECT name, checksum FROM mana_ai.schema_definitions');
  return new Map(rows.map((r) => [r.name, r.checksum]));
}


/**
 * Definitions whose objects the catalog lacks, with what is missing: a
 * function, view or trigger a migration dropped, or that was never created
 * because an earlier migrate failed between its steps. Our triggers must
 * call a function of mana_ai, not one of the same name elsewhere.
 */
export async function missingObjects(client: Queryable, all: DefinitionPlan['all']): Promise<Map<string, string[]>> {
  const wanted = all.flatMap((d) => definedObjects(d.sql).map((o) => ({ file: d.def.name, o })));
  const { rows } = await client.query<{ i: number; ok: boolean }>(
    `SELECT w.i, CASE w.kind
         WHEN 'function' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'mana_ai'::regnamespace AND p.proname = w.name)
         WHEN 'view' THEN EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = 'mana_ai'::regnamespace AND c.relname = w.name AND c.relkind = 'v')
         ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                       WHERE t.tgrelid = to_regclass(w.rel) AND t.tgname = w.name AND p.pronamespace = 'mana_ai'::regnamespace)
       END AS ok
       FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(kind, name, rel, i)`,
    [wanted.map((w) => w.o.kind), wanted.map((w) => w.o.name), wanted.map((w) => (w.o.kind === 'trigger' ? w.o.on : null))],
  );
  const missing = new Map<string, string[]>();
  for (const r of rows) {
    if (r.ok) continue;
    const w = wanted[Number(r.i) - 1]!;
    missing.set(w.file, [...(missing.get(w.file) ?? []), `${w.o.kind} ${w.o.kind === 'trigger' ? `${w.o.name} on ${w.o.on}` : `mana_ai.${w.o.name}`}`]);
  }
  return missing;
}

/**
 * SECURITY DEFINER functions of mana_ai that are not as secure_definers()
 * leaves them: executable by PUBLIC, or owned by a superuser while the
 * definer role exists.
 */
export async function insecureDefiners(client: Queryable): Promise<string[]> {
  const { rows } = await client.query<{ sig: string; why: string }>(
    `SELECT p.oid::regprocedure::text AS sig,
            CASE WHEN pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE') THEN 'executable by PUBLIC'
                 ELSE 'owned by a superuser' END AS why
       FROM pg_catalog.pg_proc p
       JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
      WHERE p.pronamespace = 'mana_ai'::regnamespace AND p.prosecdef
        AND (pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE')
             OR (r.rolsuper AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles d WHERE d.rolname = 'mana_ai_definer')))
      ORDER BY 1`,
  );
  return rows.map((r) => `SECURITY DEFINER ${r.sig} ${r.why}`);
}
