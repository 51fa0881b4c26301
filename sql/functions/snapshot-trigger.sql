-- The trigger functions on mana-sync's table and the per-row fold they run.
-- They must never make a mana-sync insert fail: every error is caught and
-- recorded in mana_ai.snapshot_errors (transient ones are repaired by the
-- owning daemon, sql/functions/rebuild.sql).

CREATE OR REPLACE FUNCTION mana_ai.is_transient_sqlstate(p_sqlstate text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(
           left(p_sqlstate, 2) IN ('40', '53')          -- serialization failure, deadlock; insufficient resources
           OR p_sqlstate IN ('55P03',                     -- lock_not_available (lock_timeout)
                             '57014',                     -- query_canceled (statement_timeout)
                             '23505'),                    -- unique_violation: a race on the snapshot key
           false)
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
SET search_path = pg_catalog, mana_ai, pg_temp
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

CREATE OR REPLACE FUNCTION mana_ai.apply_agent_change(
  p_change_id uuid,
  p_user_id text,
  p_record_id text,
  p_op text,
  p_data jsonb,
  p_field_timestamps jsonb,
  p_created_at timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_key bytea;
  v_old mana_ai.agent_snapshots%ROWTYPE;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' OR p_record_id IS NULL THEN
    RAISE EXCEPTION 'change without user_id or record_id' USING ERRCODE = '22023';
  END IF;
  v_key := mana_ai.mission_key(p_user_id, p_record_id);
  FOR v_try IN 1..3 LOOP
    SELECT * INTO v_old FROM mana_ai.agent_snapshots WHERE agent_key = v_key FOR UPDATE;
    SELECT f.record, f.field_ts INTO v_record, v_fts
      FROM mana_ai.fold_change(v_old.record, v_old.field_ts, p_record_id, p_op, p_data, p_field_timestamps, p_created_at) AS f;
    IF mana_ai.store_agent_snapshot(v_old, p_user_id, p_record_id, v_record, v_fts, p_change_id) THEN
      RETURN;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'snapshot of this agent was created concurrently and is not visible to this transaction'
    USING ERRCODE = '40001';
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.on_sync_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_message text;
  v_sqlstate text;
  v_error_id bigint;
  v_transient boolean;
  v_partition int;
BEGIN
  BEGIN
    PERFORM mana_ai.apply_change(NEW.id, NEW.user_id, NEW.record_id, NEW.op, NEW.data,
                                 NEW.field_timestamps, NEW.created_at);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
    BEGIN
      v_transient := mana_ai.is_transient_sqlstate(v_sqlstate);
      v_partition := mana_ai.user_partition(NEW.user_id);
      INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate, transient, partition)
      VALUES (NEW.id, NEW.user_id, NEW.record_id, left(NEW.op, 16),
              left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate, v_transient, v_partition)
      RETURNING id INTO v_error_id;
      -- Ids and messages stay in the table; the payload says who should act.
      PERFORM pg_notify('mana_ai_snapshot_errors',
                        json_build_object('id', v_error_id, 'p', v_partition, 't', v_transient)::text);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
    END;
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_change() FROM PUBLIC;

CREATE OR REPLACE FUNCTION mana_ai.on_sync_agent_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_message text;
  v_sqlstate text;
  v_error_id bigint;
  v_transient boolean;
  v_partition int;
BEGIN
  BEGIN
    PERFORM mana_ai.apply_agent_change(NEW.id, NEW.user_id, NEW.record_id, NEW.op, NEW.data,
                                       NEW.field_timestamps, NEW.created_at);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
    BEGIN
      v_transient := mana_ai.is_transient_sqlstate(v_sqlstate);
      v_partition := mana_ai.user_partition(NEW.user_id);
      INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate, transient, partition, kind)
      VALUES (NEW.id, NEW.user_id, NEW.record_id, left(NEW.op, 16),
              left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate, v_transient, v_partition, 'agent')
      RETURNING id INTO v_error_id;
      PERFORM pg_notify('mana_ai_snapshot_errors',
                        json_build_object('id', v_error_id, 'p', v_partition, 't', v_transient)::text);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
    END;
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_agent_change() FROM PUBLIC;
