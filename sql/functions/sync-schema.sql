-- Which of mana-sync's two schemas the database has (CONTRACT.md sections
-- 2 and 12), read from the catalog, never configured: the per-field map's
-- column (field_timestamps in the seed's schema, field_meta today) and
-- whether origin and space_id exist, of the table recorded in
-- mana_ai.sync_table (never one found by a trigger's name, which any role
-- can give a trigger of its own: issue 27). Also the table's qualified
-- name, for the daemon's own SQL. For the write-back's column list,
-- `inspect` and /health. Reads only; runs as the caller.
CREATE OR REPLACE FUNCTION mana_ai.sync_schema()
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
           'table', format('%I.%I', n.nspname, c.relname),
           'schema', n.nspname::text,
           'name', c.relname::text,
           'fieldMap', (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname IN ('field_meta', 'field_timestamps')
                         ORDER BY a.attname = 'field_meta' DESC LIMIT 1),
           'origin', EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname = 'origin'),
           'spaceId', EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attname = 'space_id'))
    FROM mana_ai.sync_table s
    JOIN pg_catalog.pg_namespace n ON n.nspname = s.schema_name
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.table_name AND c.relpersistence = 'p'
$$;

-- Locks the recorded table in ROW EXCLUSIVE mode (what an insert takes
-- anyway) and then answers sync_schema(), in one round trip: a rename of
-- the map column (ACCESS EXCLUSIVE) waits until the caller's transaction
-- ends instead of landing between this read and the write-back's insert.
-- Runs as the caller (who needs INSERT on the table).
CREATE OR REPLACE FUNCTION mana_ai.lock_sync_schema()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_table text;
BEGIN
  SELECT format('%I.%I', s.schema_name, s.table_name) INTO v_table FROM mana_ai.sync_table s;
  IF v_table IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', v_table);
  RETURN mana_ai.sync_schema();
END
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
