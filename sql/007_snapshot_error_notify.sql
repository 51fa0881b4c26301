-- 007: the trigger also NOTIFYs when it records a snapshot error, on its
-- own channel, so the daemon counts fold errors as they happen
-- (mana_ai_snapshot_errors_total, alert ManaAISnapshotErrorsGrowing)
-- without ever polling the table. Same promise as 002: whatever happens
-- here, mana-sync's insert commits.

CREATE OR REPLACE FUNCTION mana_ai.on_sync_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
DECLARE
  v_message text;
  v_sqlstate text;
  v_error_id bigint;
BEGIN
  BEGIN
    PERFORM mana_ai.apply_change(NEW.id, NEW.user_id, NEW.record_id, NEW.op, NEW.data,
                                 NEW.field_timestamps, NEW.created_at);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
    BEGIN
      INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate)
      VALUES (NEW.id, left(NEW.user_id, 256), left(NEW.record_id, 256), left(NEW.op, 16),
              left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate)
      RETURNING id INTO v_error_id;
      -- Only the error row's id: ids and messages stay in the table.
      PERFORM pg_notify('mana_ai_snapshot_errors', json_build_object('id', v_error_id)::text);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
    END;
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_change() FROM PUBLIC;
