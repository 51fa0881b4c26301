// The definitions' side of migrate (docs/schema.md): the values filled
// into their placeholders (mana-sync's table, the merge rule the fold
// applies), their checksums as filled in, and what the database has
// recorded of them. Reads only; migrate.ts applies.

import type pg from 'pg';
import { fillPlaceholders, loadDefinitions, MigrationError, sha256, type Definition } from './sql-files.js';

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
 * qualified: the one our trigger is on, else the one the migrating role's
 * search_path finds. `field_map`: that table's per-field map column
 * (field_meta today, field_timestamps in the seed's schema), which the
 * trigger reads by name (a rename since is caught there and makes this
 * differ, so the next migrate re-applies it). `merge_rule`: the webapp
 * generation whose merge rule the fold applies.
 */
async function placeholders(client: Queryable): Promise<Record<string, string>> {
  const { rows } = await client.query<{ name: string | null; map: string | null }>(`
    WITH t AS (
      SELECT coalesce(
        (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.tgname = 'mana_ai_mission_snapshot' LIMIT 1),
        to_regclass('sync_changes')) AS oid)
    SELECT format('%I.%I', n.nspname, c.relname) AS name,
           (SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname IN ('field_meta', 'field_timestamps')
             ORDER BY a.attname = 'field_meta' DESC LIMIT 1) AS map
      FROM t JOIN pg_catalog.pg_class c ON c.oid = t.oid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`);
  const name = rows[0]?.name;
  if (!name) throw new MigrationError(`mana-sync's table sync_changes was not found (neither our trigger's table nor on this role's search_path); create it (mana-sync's migrations) first`);
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

export async function planDefinitions(client: Queryable, dir: string | undefined, recorded: Map<string, string>): Promise<DefinitionPlan> {
  const values = await placeholders(client);
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

