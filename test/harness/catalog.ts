// What the mana_ai schema consists of, read from the catalog and printed in
// a stable order, so two databases can be compared line by line: every
// function (its full definition, owner and rights), trigger, view, policy,
// grant, table column, constraint, index and sequence that belongs to
// mana_ai or runs on mana-sync's table for it. Read-only.

import type pg from 'pg';

export interface CatalogPart {
  kind: string;
  lines: string[];
}

const PARTS: Record<string, string> = {
  functions: `
    SELECT p.oid::regprocedure::text || E'\\n' || pg_get_functiondef(p.oid)
           || E'\\nowner ' || pg_get_userbyid(p.proowner)
           || E'\\nacl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '(default)') AS line
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'mana_ai'`,
  triggers: `
    SELECT t.tgname || ' ' || t.tgenabled::text || ' ' || pg_get_triggerdef(t.oid) AS line
      FROM pg_trigger t
      JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_proc p ON p.oid = t.tgfoid
      JOIN pg_namespace pn ON pn.oid = p.pronamespace
     WHERE NOT t.tgisinternal AND pn.nspname = 'mana_ai'`,
  views: `
    SELECT c.relname || ' owner ' || pg_get_userbyid(c.relowner) || E'\\n' || pg_get_viewdef(c.oid) AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'mana_ai' AND c.relkind IN ('v', 'm')`,
  policies: `
    SELECT schemaname || '.' || tablename || ' ' || policyname || ' ' || permissive || ' ' || roles::text || ' ' || cmd
           || ' using ' || coalesce(qual, '-') || ' check ' || coalesce(with_check, '-') AS line
      FROM pg_policies WHERE schemaname = 'mana_ai'`,
  rls: `
    SELECT c.relname || ' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'mana_ai' AND c.relkind = 'r'`,
  'routine grants': `
    SELECT grantor || ' ' || grantee || ' ' || regexp_replace(specific_name, '_[0-9]+$', '') || ' ' || routine_name || ' ' || privilege_type || ' ' || is_grantable AS line
      FROM information_schema.role_routine_grants WHERE routine_schema = 'mana_ai'`,
  'table grants': `
    SELECT c.relname || ' ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '(default)') AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'mana_ai' AND c.relkind IN ('r', 'v', 'm', 'S')`,
  columns: `
    SELECT table_name || '.' || column_name || ' #' || ordinal_position || ' ' || data_type || ' null=' || is_nullable
           || ' default=' || coalesce(column_default, '-') || ' generated=' || coalesce(generation_expression, '-')
           || ' identity=' || is_identity AS line
      FROM information_schema.columns WHERE table_schema = 'mana_ai'`,
  constraints: `
    SELECT cl.relname || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid) AS line
      FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
     WHERE n.nspname = 'mana_ai'`,
  indexes: `SELECT indexdef AS line FROM pg_indexes WHERE schemaname = 'mana_ai'`,
  sequences: `
    SELECT sequencename || ' ' || data_type || ' start ' || start_value || ' inc ' || increment_by AS line
      FROM pg_sequences WHERE schemaname = 'mana_ai'`,
};

/** The catalog of mana_ai, part by part, each part's lines sorted. */
export async function catalogOf(pool: pg.Pool | pg.Client): Promise<CatalogPart[]> {
  const out: CatalogPart[] = [];
  for (const [kind, sql] of Object.entries(PARTS)) {
    const { rows } = await pool.query<{ line: string }>(sql);
    out.push({ kind, lines: rows.map((r) => r.line).sort() });
  }
  return out;
}
