-- 002: the snapshot trigger. Folds every mission row that mana-sync
-- inserts into mana_ai.mission_snapshots with the contract's merge rule
-- (CONTRACT.md section 3) and NOTIFYs the daemons when scheduling changed.
--
-- It must never make a mana-sync insert fail: every error is caught and
-- recorded in mana_ai.snapshot_errors. The pure fold (fold_change) mirrors
-- src/merge/merge.ts; the property test holds the two equal.

-- A JSON value as a timestamp string, or NULL when it is not a string.
-- Timestamps are compared as text (ISO-8601 UTC orders like time).
CREATE FUNCTION mana_ai.ts_text(p_value jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN jsonb_typeof(p_value) = 'string' THEN p_value #>> '{}' END
$$;

-- ISO-8601 text to timestamptz, NULL for anything else. Pure checks, no
-- exception block: a subtransaction per mission row would cost more than
-- the whole fold. Accepts YYYY-MM-DDTHH:MM:SS[.f{1,3}](Z|+HH:MM|-HH:MM),
-- the same set as parseIsoStrict in src/merge/iso.ts.
CREATE FUNCTION mana_ai.parse_iso(p_text text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  m text[];
  y int; mo int; d int; hh int; mi int; ss int; oh int; om int;
  month_days int[] := ARRAY[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
BEGIN
  IF p_text IS NULL OR length(p_text) > 40 THEN
    RETURN NULL;
  END IF;
  m := regexp_match(p_text, '^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,3})?(Z|([+-])([0-9]{2}):([0-9]{2}))$');
  IF m IS NULL THEN
    RETURN NULL;
  END IF;
  y := m[1]::int; mo := m[2]::int; d := m[3]::int;
  hh := m[4]::int; mi := m[5]::int; ss := m[6]::int;
  IF y < 1 OR mo < 1 OR mo > 12 OR d < 1 OR hh > 23 OR mi > 59 OR ss > 59 THEN
    RETURN NULL;
  END IF;
  IF mo = 2 AND (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0)) THEN
    IF d > 29 THEN RETURN NULL; END IF;
  ELSIF d > month_days[mo] THEN
    RETURN NULL;
  END IF;
  IF m[8] <> 'Z' THEN
    oh := m[10]::int; om := m[11]::int;
    IF oh > 23 OR om > 59 THEN RETURN NULL; END IF;
  END IF;
  RETURN p_text::timestamptz;
END
$$;

CREATE FUNCTION mana_ai.strip_bookkeeping(p_data jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT p_data - ARRAY['id', '__fieldTimestamps', '__fieldActors', '__lastActor']
$$;

-- The merge rule as a pure function: (record, field timestamps) + one row
-- -> (record, field timestamps). record NULL in = unknown, out = removed.
-- Decisions the contract leaves open (docs/merge-rule.md):
--  * data that is neither an object nor null raises (the row is recorded
--    in snapshot_errors and changes nothing); JSON null counts as no data;
--  * a timestamp that is not a JSON string is no timestamp;
--  * the fallback for a field without a stored timestamp is the record's
--    updatedAt as it stood before the row, so the result does not depend on
--    the order of keys inside one row;
--  * a delete whose deletedAt is not a string raises (never a hard delete
--    by accident).
CREATE FUNCTION mana_ai.fold_change(
  p_record jsonb,
  p_field_ts jsonb,
  p_record_id text,
  p_op text,
  p_data jsonb,
  p_field_timestamps jsonb,
  p_created_at timestamptz,
  OUT record jsonb,
  OUT field_ts jsonb)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  v_data jsonb := p_data;
  v_fields jsonb;
  v_fts jsonb;
  v_rt text;
  v_del text;
  v_stored text;
  v_base_updated text;
  v_key text;
  v_val jsonb;
  v_ts text;
BEGIN
  record := p_record;
  field_ts := CASE WHEN p_record IS NULL THEN NULL ELSE coalesce(p_field_ts, '{}'::jsonb) END;

  IF jsonb_typeof(v_data) = 'null' THEN
    v_data := NULL;
  END IF;
  IF v_data IS NOT NULL AND jsonb_typeof(v_data) <> 'object' THEN
    RAISE EXCEPTION 'data is a JSON %, not an object', jsonb_typeof(v_data)
      USING ERRCODE = '22023';
  END IF;

  IF p_op = 'delete' THEN
    IF v_data IS NULL OR NOT (v_data ? 'deletedAt') THEN
      record := NULL;   -- hard delete
      field_ts := NULL;
      RETURN;
    END IF;
    v_del := mana_ai.ts_text(v_data -> 'deletedAt');
    IF v_del IS NULL THEN
      RAISE EXCEPTION 'delete with deletedAt of JSON type %, expected a string', jsonb_typeof(v_data -> 'deletedAt')
        USING ERRCODE = '22023';
    END IF;
    IF record IS NULL THEN
      RETURN;           -- soft delete of an unknown record: nothing happens
    END IF;
    v_stored := coalesce(mana_ai.ts_text(field_ts -> 'deletedAt'), mana_ai.ts_text(record -> 'deletedAt'), '');
    IF v_del COLLATE "C" >= v_stored COLLATE "C" THEN
      record := record || jsonb_build_object('deletedAt', v_del, 'updatedAt', v_del);
      field_ts := field_ts || jsonb_build_object('deletedAt', v_del, 'updatedAt', v_del);
    END IF;
    RETURN;
  END IF;

  v_fields := mana_ai.strip_bookkeeping(coalesce(v_data, '{}'::jsonb));

  IF p_op = 'insert' THEN
    v_rt := coalesce(
      mana_ai.ts_text(v_fields -> 'updatedAt'),
      mana_ai.ts_text(v_fields -> 'createdAt'),
      to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
    SELECT coalesce(jsonb_object_agg(k, v_rt), '{}'::jsonb) INTO v_fts
      FROM jsonb_object_keys(v_fields) AS k;
  ELSIF p_op = 'update' THEN
    IF jsonb_typeof(p_field_timestamps) = 'object' THEN
      SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) INTO v_fts
        FROM jsonb_each(p_field_timestamps) AS e
       WHERE jsonb_typeof(e.value) = 'string' AND v_fields ? e.key;
    ELSE
      v_fts := '{}'::jsonb;
    END IF;
    SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb) INTO v_fields
      FROM jsonb_each(v_fields) AS e
     WHERE v_fts ? e.key;
  ELSE
    RAISE EXCEPTION 'unknown op %', p_op USING ERRCODE = '22023';
  END IF;

  IF record IS NULL THEN
    record := v_fields || jsonb_build_object('id', p_record_id);
    field_ts := v_fts;
    RETURN;
  END IF;

  v_base_updated := coalesce(mana_ai.ts_text(record -> 'updatedAt'), '');
  FOR v_key, v_val IN SELECT e.key, e.value FROM jsonb_each(v_fields) AS e LOOP
    v_ts := v_fts ->> v_key;
    v_stored := coalesce(mana_ai.ts_text(field_ts -> v_key), v_base_updated);
    IF v_ts COLLATE "C" >= v_stored COLLATE "C" THEN
      record := record || jsonb_build_object(v_key, v_val);
      field_ts := field_ts || jsonb_build_object(v_key, v_ts);
    END IF;
  END LOOP;
END
$$;

-- The schedule a notification carries: epoch ms of the next run, or NULL
-- when the mission must not be scheduled at all.
CREATE FUNCTION mana_ai.schedulable_due_ms(p_state text, p_deleted boolean, p_next_run_at timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN p_state = 'active' AND NOT p_deleted AND p_next_run_at IS NOT NULL
              THEN floor(extract(epoch FROM p_next_run_at) * 1000)::bigint END
$$;

CREATE FUNCTION mana_ai.notify_schedule(p_sid bigint, p_version bigint, p_partition int, p_due_ms bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  -- Small on purpose: ids can be absurdly long, the payload never holds one.
  SELECT pg_notify('mana_ai_missions',
                   json_build_object('s', p_sid, 'v', p_version, 'p', p_partition, 'd', p_due_ms)::text)
$$;

-- Lock key for one mission, shared by the trigger and the backfill.
CREATE FUNCTION mana_ai.mission_lock_key(p_key bytea)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT ('x' || encode(substr(p_key, 1, 8), 'hex'))::bit(64)::bigint
$$;

-- Stores the result of a fold for one mission: insert, update or remove
-- the snapshot row, and NOTIFY when what the reactor schedules changed.
-- Shared by the trigger (apply_change) and the backfill (rebuild_snapshot).
-- p_old is the row as it was (all NULL when there was none).
CREATE FUNCTION mana_ai.store_snapshot(
  p_old mana_ai.mission_snapshots,
  p_user_id text,
  p_mission_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS void
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
    RETURN;
  END IF;

  v_state := mana_ai.ts_text(p_record -> 'state');
  v_next := mana_ai.parse_iso(mana_ai.ts_text(p_record -> 'nextRunAt'));
  -- Gone unless deletedAt is absent, null, "" or false (src/merge/derive.ts).
  v_deleted := coalesce(p_record -> 'deletedAt', 'null'::jsonb) NOT IN ('null'::jsonb, '""'::jsonb, 'false'::jsonb);

  IF p_old.sid IS NULL THEN
    INSERT INTO mana_ai.mission_snapshots
      (user_id, mission_id, record, field_ts, state, next_run_at, deleted, version, last_change_id)
    VALUES (p_user_id, p_mission_id, p_record, p_field_ts, v_state, v_next, v_deleted, 1, p_change_id)
    RETURNING sid, version, partition INTO v_sid, v_version, v_partition;
    PERFORM mana_ai.notify_schedule(v_sid, v_version, v_partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next));
    RETURN;
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
END
$$;

-- Applies one change row to the snapshot; raises on rows it cannot fold.
CREATE FUNCTION mana_ai.apply_change(
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
  -- Serialises concurrent changes of one mission (and the backfill).
  PERFORM pg_advisory_xact_lock(mana_ai.mission_lock_key(v_key));

  SELECT * INTO v_old FROM mana_ai.mission_snapshots WHERE mission_key = v_key;
  SELECT f.record, f.field_ts INTO v_record, v_fts
    FROM mana_ai.fold_change(v_old.record, v_old.field_ts, p_record_id, p_op, p_data, p_field_timestamps, p_created_at) AS f;
  PERFORM mana_ai.store_snapshot(v_old, p_user_id, p_record_id, v_record, v_fts, p_change_id);
END
$$;

-- The trigger function. SECURITY DEFINER with a pinned search_path, so
-- mana-sync's role needs no rights on mana_ai; the exception block is the
-- promise that a mana-sync insert never fails because of us.
CREATE FUNCTION mana_ai.on_sync_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_message text;
  v_sqlstate text;
BEGIN
  BEGIN
    PERFORM mana_ai.apply_change(NEW.id, NEW.user_id, NEW.record_id, NEW.op, NEW.data,
                                 NEW.field_timestamps, NEW.created_at);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
    BEGIN
      INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate)
      VALUES (NEW.id, left(NEW.user_id, 256), left(NEW.record_id, 256), left(NEW.op, 16),
              left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
    END;
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_change() FROM PUBLIC;

CREATE TRIGGER mana_ai_mission_snapshot
  AFTER INSERT ON sync_changes
  FOR EACH ROW
  WHEN (NEW.app_id = 'ai' AND NEW.table_name = 'aiMissions')
  EXECUTE FUNCTION mana_ai.on_sync_change();
