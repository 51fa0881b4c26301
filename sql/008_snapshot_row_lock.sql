-- 008: one per-mission lock, and it is the snapshot row itself.
--
-- Until now the trigger serialised changes of one mission with a
-- transaction-scoped advisory lock. That had two faults (issue 11):
--  * the write-back locked the snapshot row first and then inserted (whose
--    trigger took the advisory lock), while a device write took the advisory
--    lock first and then updated the row: opposite orders, a deadlock, and a
--    snapshot that silently missed the device's change;
--  * every advisory lock lives in the shared lock table until commit, so one
--    statement inserting ~36k mission rows ran out of shared memory and the
--    rest of its missions got no snapshot at all.
-- Now every writer of a snapshot (trigger, rebuild, write-back) takes
-- `SELECT ... FOR UPDATE` on the snapshot row first. A row lock is kept in
-- the row, not in the lock table, so there is no per-statement limit, and
-- there is only one lock, so there is only one order.
--
-- A mission that has no snapshot yet has no row to lock: the first writer
-- inserts with ON CONFLICT DO NOTHING, and a writer that loses that race
-- (the other transaction committed the row meanwhile) locks the new row and
-- folds again.

DROP FUNCTION mana_ai.store_snapshot(mana_ai.mission_snapshots, text, text, jsonb, jsonb, uuid);

-- Stores the result of a fold for one mission whose row (if any) the caller
-- has locked. Returns false only when the mission had no row and another
-- transaction created one meanwhile: the caller locks that row and folds
-- again. NOTIFYs when what the reactor schedules changed.
CREATE FUNCTION mana_ai.store_snapshot(
  p_old mana_ai.mission_snapshots,
  p_user_id text,
  p_mission_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_state text;
  v_next timestamptz;
  v_deleted boolean;
  v_sid bigint;
  v_version bigint;
  v_partition int;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.sid IS NOT NULL THEN
      DELETE FROM mana_ai.mission_snapshots WHERE sid = p_old.sid;
      PERFORM mana_ai.notify_schedule(p_old.sid, p_old.version + 1, p_old.partition, NULL);
    END IF;
    RETURN true;
  END IF;

  v_state := mana_ai.ts_text(p_record -> 'state');
  v_next := mana_ai.parse_iso(mana_ai.ts_text(p_record -> 'nextRunAt'));
  -- Gone unless deletedAt is absent, null, "" or false (src/merge/derive.ts).
  v_deleted := coalesce(p_record -> 'deletedAt', 'null'::jsonb) NOT IN ('null'::jsonb, '""'::jsonb, 'false'::jsonb);

  IF p_old.sid IS NULL THEN
    INSERT INTO mana_ai.mission_snapshots
      (user_id, mission_id, record, field_ts, state, next_run_at, deleted, version, last_change_id)
    VALUES (p_user_id, p_mission_id, p_record, p_field_ts, v_state, v_next, v_deleted, 1, p_change_id)
    ON CONFLICT (mission_key) DO NOTHING
    RETURNING sid, version, partition INTO v_sid, v_version, v_partition;
    IF v_sid IS NULL THEN
      RETURN false;
    END IF;
    PERFORM mana_ai.notify_schedule(v_sid, v_version, v_partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next));
    RETURN true;
  END IF;

  UPDATE mana_ai.mission_snapshots
     SET record = p_record,
         field_ts = p_field_ts,
         state = v_state,
         next_run_at = v_next,
         deleted = v_deleted,
         version = version + 1,
         last_change_id = p_change_id,
         updated_at = now()
   WHERE sid = p_old.sid;

  IF v_state IS DISTINCT FROM p_old.state
     OR v_next IS DISTINCT FROM p_old.next_run_at
     OR v_deleted IS DISTINCT FROM p_old.deleted THEN
    PERFORM mana_ai.notify_schedule(p_old.sid, p_old.version + 1, p_old.partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next));
  END IF;
  RETURN true;
END
$$;

-- Applies one change row to the snapshot under the snapshot's row lock;
-- raises on rows it cannot fold.
CREATE OR REPLACE FUNCTION mana_ai.apply_change(
  p_change_id uuid,
  p_user_id text,
  p_record_id text,
  p_op text,
  p_data jsonb,
  p_field_timestamps jsonb,
  p_created_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_key bytea;
  v_old mana_ai.mission_snapshots%ROWTYPE;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' OR p_record_id IS NULL THEN
    RAISE EXCEPTION 'change without user_id or record_id' USING ERRCODE = '22023';
  END IF;
  v_key := mana_ai.mission_key(p_user_id, p_record_id);
  -- Two rounds suffice in READ COMMITTED (the second sees the row the
  -- first lost to); a third failure means a snapshot isolation level that
  -- cannot see it, which is a serialization failure like any other.
  FOR v_try IN 1..3 LOOP
    SELECT * INTO v_old FROM mana_ai.mission_snapshots WHERE mission_key = v_key FOR UPDATE;
    SELECT f.record, f.field_ts INTO v_record, v_fts
      FROM mana_ai.fold_change(v_old.record, v_old.field_ts, p_record_id, p_op, p_data, p_field_timestamps, p_created_at) AS f;
    IF mana_ai.store_snapshot(v_old, p_user_id, p_record_id, v_record, v_fts, p_change_id) THEN
      RETURN;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this mission was created concurrently and is not visible to this transaction'
    USING ERRCODE = '40001';
END
$$;

-- Folds every row of one record of any app, in log order (created_at, id),
-- with the trigger's own fold. Rows the fold rejects change nothing, as in
-- the trigger. Runs as the caller: row-level security on sync_changes
-- applies, so the caller's transaction must be scoped to p_user_id. Memory
-- stays bounded by one record however many rows it has. Used by the
-- resolvers (every input record) and by rebuild_snapshot.
CREATE FUNCTION mana_ai.fold_record(
  p_user_id text,
  p_app_id text,
  p_table_name text,
  p_record_id text,
  OUT record jsonb,
  OUT field_ts jsonb,
  OUT last_change_id uuid,
  OUT rows_folded int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, mana_ai, public
AS $$
DECLARE
  r record;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  rows_folded := 0;
  FOR r IN
    SELECT c.id, c.op, c.data, c.field_timestamps, c.created_at
      FROM sync_changes c
     WHERE c.app_id = p_app_id AND c.table_name = p_table_name
       AND c.user_id = p_user_id AND c.record_id = p_record_id
     ORDER BY c.created_at, c.id
  LOOP
    rows_folded := rows_folded + 1;
    BEGIN
      SELECT f.record, f.field_ts INTO STRICT v_record, v_fts
        FROM mana_ai.fold_change(record, field_ts, p_record_id, r.op, r.data, r.field_timestamps, r.created_at) AS f;
      record := v_record;
      field_ts := v_fts;
      last_change_id := r.id;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- a row the trigger would have recorded as an error changes nothing
    END;
  END LOOP;
END
$$;

-- The backfill's one-mission rebuild, now under the same row lock as the
-- trigger (it used the advisory lock before).
CREATE OR REPLACE FUNCTION mana_ai.rebuild_snapshot(p_user_id text, p_record_id text)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, public
AS $$
DECLARE
  v_key bytea := mana_ai.mission_key(p_user_id, p_record_id);
  v_old mana_ai.mission_snapshots%ROWTYPE;
  f record;
BEGIN
  -- Scope to the user as every reader must; a superuser or BYPASSRLS role
  -- is still needed to list the missions of all users (the caller's job).
  PERFORM set_config('app.current_user_id', p_user_id, true);
  FOR v_try IN 1..3 LOOP
    SELECT * INTO v_old FROM mana_ai.mission_snapshots WHERE mission_key = v_key FOR UPDATE;
    -- Read after the lock: every change committed before it is folded, and
    -- every later one waits for us and folds on top of our result.
    SELECT * INTO f FROM mana_ai.fold_record(p_user_id, 'ai', 'aiMissions', p_record_id);
    IF v_old.sid IS NOT NULL AND f.record IS NOT NULL
       AND v_old.record = f.record AND v_old.field_ts = f.field_ts THEN
      RETURN f.rows_folded; -- already converged: no version bump, no notification
    END IF;
    IF mana_ai.store_snapshot(v_old, p_user_id, p_record_id, f.record, f.field_ts, f.last_change_id) THEN
      RETURN f.rows_folded;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this mission was created concurrently and is not visible to this transaction'
    USING ERRCODE = '40001';
END
$$;

-- The write-back's first statement: the same row lock the trigger takes,
-- and the snapshot as it stands under it. Between this and the write-back's
-- insert no device change can be folded, and the insert's own trigger finds
-- the lock already held by its transaction. SECURITY DEFINER so the runtime
-- role needs no UPDATE right on the snapshots to lock one (FOR UPDATE
-- requires it); execution is granted to that role alone (sql/011).
CREATE FUNCTION mana_ai.lock_snapshot_for_write_back(p_sid bigint)
RETURNS TABLE (record jsonb, state text, next_run_at timestamptz, deleted boolean, version bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
  SELECT s.record, s.state, s.next_run_at, s.deleted, s.version
    FROM mana_ai.mission_snapshots s
   WHERE s.sid = p_sid
     FOR UPDATE
$$;

REVOKE ALL ON FUNCTION mana_ai.lock_snapshot_for_write_back(bigint) FROM PUBLIC;

-- The lock key of the advisory lock is no longer used by anyone.
DROP FUNCTION mana_ai.mission_lock_key(bytea);
