-- 005: backfill for databases that held missions before the trigger.
-- rebuild_snapshot replays one mission's rows in log order with the same
-- fold and the same store as the trigger, under the same per-mission lock,
-- so it is safe while devices keep writing and converges to what a replay
-- from scratch gives. scripts/backfill.ts drives it in small batches (no
-- long lock on sync_changes) and records its cursor in backfill_progress,
-- which makes it resumable. Reading every user's rows needs a role that
-- bypasses row-level security (docs/backfill.md).

CREATE TABLE mana_ai.backfill_progress (
  id             int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  last_user_id   text,
  last_record_id text,
  missions_done  bigint NOT NULL DEFAULT 0,
  rows_done      bigint NOT NULL DEFAULT 0,
  started_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz
);

-- Returns the number of change rows folded.
CREATE FUNCTION mana_ai.rebuild_snapshot(p_user_id text, p_record_id text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, public
AS $$
DECLARE
  v_key bytea := mana_ai.mission_key(p_user_id, p_record_id);
  v_old mana_ai.mission_snapshots%ROWTYPE;
  v_record jsonb := NULL;
  v_fts jsonb := NULL;
  v_last uuid;
  v_rows int := 0;
  r record;
BEGIN
  PERFORM pg_advisory_xact_lock(mana_ai.mission_lock_key(v_key));
  -- Scope to the user as every reader must; a superuser or BYPASSRLS role
  -- is still needed to list the missions of all users (the caller's job).
  PERFORM set_config('app.current_user_id', p_user_id, true);
  FOR r IN
    SELECT c.id, c.op, c.data, c.field_timestamps, c.created_at
      FROM sync_changes c
     WHERE c.app_id = 'ai' AND c.table_name = 'aiMissions'
       AND c.user_id = p_user_id AND c.record_id = p_record_id
     ORDER BY c.created_at, c.id
  LOOP
    v_rows := v_rows + 1;
    BEGIN
      SELECT f.record, f.field_ts INTO STRICT v_record, v_fts
        FROM mana_ai.fold_change(v_record, v_fts, p_record_id, r.op, r.data, r.field_timestamps, r.created_at) AS f;
      v_last := r.id;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- a row the trigger would have recorded as an error changes nothing
    END;
  END LOOP;
  SELECT * INTO v_old FROM mana_ai.mission_snapshots WHERE mission_key = v_key;
  IF v_old.sid IS NOT NULL AND v_record IS NOT NULL
     AND v_old.record = v_record AND v_old.field_ts = v_fts THEN
    RETURN v_rows; -- already converged: no version bump, no notification
  END IF;
  PERFORM mana_ai.store_snapshot(v_old, p_user_id, p_record_id, v_record, v_fts, v_last);
  RETURN v_rows;
END
$$;
