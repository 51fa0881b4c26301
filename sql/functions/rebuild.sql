-- Folding a record from all of its rows in log order: the resolvers' read
-- of every input record, the backfill's one-mission rebuild and the repair
-- of a transient fold error. Runs under the caller's row-level security on
-- mana-sync's table (${sync_changes}, its qualified name, filled in by
-- migrate); never writes to it.

-- Which rows stand for a record: exactly one scope, decided by the caller
-- (src/planner/resolvers/record-scope.ts), never loosened here (issue 27,
-- item 2):
--   p_scope 'owner'     every row of the owner (the trigger's own view of a
--                       mission or agent: the rebuild);
--   p_scope 'personal'  the owner's rows that name no space: a personal
--                       record; another user's rows with the same record id
--                       never stand in for it;
--   p_scope 'space'     the rows of the one space p_space_id, written by
--                       p_writers (the members of that space the caller
--                       verified). The caller sets app.current_user_space_ids
--                       to the owner's memberships, so row-level security
--                       (mana-sync's space members' policy) shows nothing of
--                       a space the owner left.
-- space_id is read from the row as JSON: on the seed's table, which has
-- none, no row names a space.
DROP FUNCTION IF EXISTS mana_ai.fold_record(text, text, text, text);
DROP FUNCTION IF EXISTS mana_ai.fold_record(text, text, text, text, text[]);
CREATE OR REPLACE FUNCTION mana_ai.fold_record(
  p_user_id text,
  p_app_id text,
  p_table_name text,
  p_record_id text,
  p_scope text DEFAULT 'owner',
  p_space_id text DEFAULT NULL,
  p_writers text[] DEFAULT NULL,
  OUT record jsonb,
  OUT field_ts jsonb,
  OUT last_change_id uuid,
  OUT rows_folded int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  r record;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  rows_folded := 0;
  IF p_scope IS NULL OR p_scope NOT IN ('owner', 'personal', 'space') OR (p_scope = 'space' AND (p_space_id IS NULL OR p_writers IS NULL)) THEN
    RAISE EXCEPTION 'fold_record: scope % needs its space and writers', p_scope USING ERRCODE = '22023';
  END IF;
  FOR r IN
    -- the per-field map by either name (field_map_of)
    SELECT c.id, c.op, c.data, mana_ai.field_map_of(j.row) AS field_map, c.created_at
      FROM ${sync_changes} c
      CROSS JOIN LATERAL (SELECT to_jsonb(c) AS row) j
     WHERE c.app_id = p_app_id AND c.table_name = p_table_name AND c.record_id = p_record_id
       AND CASE p_scope
             WHEN 'owner' THEN c.user_id = p_user_id
             WHEN 'personal' THEN c.user_id = p_user_id AND (j.row ->> 'space_id') IS NULL
             ELSE (j.row ->> 'space_id') = p_space_id AND c.user_id = ANY (p_writers)
           END
     ORDER BY c.created_at, c.id
  LOOP
    rows_folded := rows_folded + 1;
    BEGIN
      SELECT f.record, f.field_ts INTO STRICT v_record, v_fts
        FROM mana_ai.fold_change(record, field_ts, p_record_id, r.op, r.data, r.field_map, r.created_at) AS f;
      record := v_record;
      field_ts := v_fts;
      last_change_id := r.id;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- a row the trigger would have recorded as an error changes nothing
    END;
  END LOOP;
END
$$;

-- Who wrote rows of a record, and in which space (NULL: none named), as
-- far as the caller's row-level security lets it see: the owner's own rows
-- and, with app.current_user_space_ids set, those of the owner's spaces.
-- What record-scope.ts decides a record's one scope from.
CREATE OR REPLACE FUNCTION mana_ai.record_writers(p_app_id text, p_table_name text, p_record_id text)
RETURNS TABLE (space_id text, user_id text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT DISTINCT to_jsonb(c) ->> 'space_id', c.user_id
    FROM ${sync_changes} c
   WHERE c.app_id = p_app_id AND c.table_name = p_table_name AND c.record_id = p_record_id
   ORDER BY 1 NULLS FIRST, 2
   LIMIT 1000
$$;

-- Rebuilds one record's snapshot from all of its rows, under the same row
-- lock as the trigger, so it is safe while devices keep writing: every
-- change committed before the lock is folded, every later one waits and
-- folds on top. p_kind is 'mission' or 'agent'; as in the trigger, the two
-- kinds share everything but their snapshot table's lock and store.
-- Returns the number of change rows folded. The backfill and the repair of
-- transient fold errors call it.
CREATE OR REPLACE FUNCTION mana_ai.rebuild_record(p_kind text, p_user_id text, p_record_id text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_key bytea := mana_ai.mission_key(p_user_id, p_record_id);
  v_mission mana_ai.mission_snapshots%ROWTYPE;
  v_agent mana_ai.agent_snapshots%ROWTYPE;
  v_exists boolean;
  v_record jsonb;
  v_field_ts jsonb;
  f record;
  v_payload text;
BEGIN
  IF p_kind IS NULL OR p_kind NOT IN ('mission', 'agent') THEN
    RAISE EXCEPTION 'unknown record kind %', p_kind USING ERRCODE = '22023';
  END IF;
  -- Scope to the user as every reader must; a superuser or BYPASSRLS role
  -- is still needed to list the records of all users (the caller's job).
  PERFORM set_config('app.current_user_id', p_user_id, true);
  FOR v_try IN 1..3 LOOP
    IF p_kind = 'agent' THEN
      SELECT * INTO v_agent FROM mana_ai.agent_snapshots WHERE agent_key = v_key FOR UPDATE;
      v_exists := v_agent.aid IS NOT NULL; v_record := v_agent.record; v_field_ts := v_agent.field_ts;
    ELSE
      SELECT * INTO v_mission FROM mana_ai.mission_snapshots WHERE mission_key = v_key FOR UPDATE;
      v_exists := v_mission.sid IS NOT NULL; v_record := v_mission.record; v_field_ts := v_mission.field_ts;
      -- the v2 grant state from the same history, under the same lock (sql/functions/grant-state.sql)
      PERFORM mana_ai.replay_grants(p_user_id, p_record_id);
    END IF;
    f := mana_ai.fold_record(p_user_id, 'ai', CASE p_kind WHEN 'agent' THEN 'agents' ELSE 'aiMissions' END, p_record_id);
    IF v_exists AND f.record IS NOT NULL AND v_record = f.record AND v_field_ts = f.field_ts THEN
      RETURN f.rows_folded; -- already converged: no version bump, no notification
    END IF;
    v_payload := CASE p_kind
                   WHEN 'agent' THEN mana_ai.store_agent(v_agent, p_user_id, p_record_id, f.record, f.field_ts, f.last_change_id)
                   ELSE mana_ai.store_mission(v_mission, p_user_id, p_record_id, f.record, f.field_ts, f.last_change_id) END;
    IF v_payload IS NOT NULL THEN
      IF v_payload <> '' THEN
        PERFORM pg_notify(CASE p_kind WHEN 'agent' THEN 'mana_ai_agents' ELSE 'mana_ai_missions' END, v_payload);
      END IF;
      RETURN f.rows_folded;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this % was created concurrently and is not visible to this transaction', p_kind
    USING ERRCODE = '40001';
END
$$;

-- The first layout's per-kind rebuilds, replaced by rebuild_record.
DROP FUNCTION IF EXISTS mana_ai.rebuild_snapshot(text, text);
DROP FUNCTION IF EXISTS mana_ai.rebuild_agent_snapshot(text, text);

CREATE OR REPLACE FUNCTION mana_ai.repair_snapshot_error(p_error_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  e mana_ai.snapshot_errors%ROWTYPE;
BEGIN
  SELECT * INTO e FROM mana_ai.snapshot_errors
   WHERE id = p_error_id AND transient AND repaired_at IS NULL
     FOR UPDATE SKIP LOCKED;
  IF e.id IS NULL THEN
    RETURN 'not-pending';
  END IF;
  BEGIN
    PERFORM mana_ai.rebuild_record(e.kind, e.user_id, e.record_id);
    UPDATE mana_ai.snapshot_errors SET repaired_at = now(), repair_error = NULL WHERE id = e.id;
    RETURN 'repaired';
  EXCEPTION WHEN OTHERS THEN
    UPDATE mana_ai.snapshot_errors SET repair_error = left(SQLERRM, 2000) WHERE id = e.id;
    RETURN 'failed';
  END;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.repair_snapshot_error(bigint) FROM PUBLIC;

-- The pending transient errors of some partitions (at most p_limit), for a
-- daemon that just took those partitions: ids to hand to
-- repair_snapshot_error one by one (one short transaction each).
CREATE OR REPLACE FUNCTION mana_ai.pending_snapshot_errors(p_partitions int[], p_limit int)
RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT e.id FROM mana_ai.snapshot_errors e
   WHERE e.transient AND e.repaired_at IS NULL AND e.partition = ANY(p_partitions)
   ORDER BY e.id
   LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION mana_ai.pending_snapshot_errors(int[], int) FROM PUBLIC;

-- The space a mission lives in, as mana-sync stored it: the space_id of
-- the owner's first insert row of it (NULL: personal, or the seed's table
-- without the column). The write-back names this space only when the
-- owner is a verified member of it (issue 27, item 3), never a spaceId
-- from the mission's data, which any device can set to any space.
CREATE OR REPLACE FUNCTION mana_ai.mission_space(p_user_id text, p_mission_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT to_jsonb(c) ->> 'space_id'
    FROM ${sync_changes} c
   WHERE c.app_id = 'ai' AND c.table_name = 'aiMissions' AND c.record_id = p_mission_id
     AND c.user_id = p_user_id AND c.op = 'insert'
   ORDER BY c.created_at, c.id
   LIMIT 1
$$;
