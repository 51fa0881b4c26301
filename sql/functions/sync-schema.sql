-- Which of mana-sync's two schemas the database has (CONTRACT.md sections
-- 2 and 12), read from the catalog, never configured: the per-field map's
-- column (field_timestamps in the seed's schema, field_meta today) and
-- whether origin and space_id exist. For the write-back's column list,
-- `inspect` and /health. Reads only the catalog; runs as the caller.
CREATE OR REPLACE FUNCTION mana_ai.sync_schema()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
           'table', format('%I.%I', n.nspname, c.relname),
           'fieldMap', (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname IN ('field_meta', 'field_timestamps')
                         ORDER BY a.attname = 'field_meta' DESC LIMIT 1),
           'origin', EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname = 'origin'),
           'spaceId', EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname = 'space_id'))
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE t.tgname = 'mana_ai_mission_snapshot'
   LIMIT 1
$$;

-- The per-field timestamp map of a sync_changes row given as JSON
-- (to_jsonb(row)), under either name: what the trigger and fold_record
-- read, so that nothing of theirs names the column and a rename while rows
-- arrive changes nothing. Inlined by the planner.
CREATE OR REPLACE FUNCTION mana_ai.field_map_of(p_row jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(p_row -> 'field_meta', p_row -> 'field_timestamps')
$$;
