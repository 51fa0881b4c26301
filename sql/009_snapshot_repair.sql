-- 009: a fold that failed for a transient reason is repaired, not left
-- behind. The trigger still never fails mana-sync's insert: it records the
-- error, and now also says whether the failure was transient (a deadlock
-- between two devices' batches, a lock or statement timeout, a
-- serialization failure, insufficient resources). Transient means the row
-- itself is fine and a fold of the mission's rows, run again, includes it:
-- the daemon that owns the mission's partition hears the NOTIFY and calls
-- repair_snapshot_error, the one-mission rebuild of the backfill. Errors
-- that happened while no daemon listened are repaired when a partition is
-- loaded (repair_pending_snapshot_errors). A row the fold rejects (bad
-- data) is not transient: the rebuild would skip it exactly as the trigger
-- did, so there is nothing to repair.
--
-- The error row now keeps the full user and record id (the rebuild needs
-- them; text is TOASTed, and no index covers them).

CREATE FUNCTION mana_ai.is_transient_sqlstate(p_sqlstate text)
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

ALTER TABLE mana_ai.snapshot_errors
  ADD COLUMN transient    boolean NOT NULL DEFAULT false,
  ADD COLUMN partition    int,
  ADD COLUMN repaired_at  timestamptz,
  ADD COLUMN repair_error text;

UPDATE mana_ai.snapshot_errors
   SET transient = mana_ai.is_transient_sqlstate(sqlstate),
       partition = mana_ai.user_partition(user_id);

CREATE INDEX snapshot_errors_pending ON mana_ai.snapshot_errors (partition, id)
  WHERE transient AND repaired_at IS NULL;

CREATE OR REPLACE FUNCTION mana_ai.on_sync_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
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

-- Repairs one recorded error: rebuilds that mission's snapshot from all of
-- its rows and marks the error repaired. Safe to call from several daemons
-- at once (the error row is locked, a second caller skips it) and while
-- devices keep writing (the rebuild takes the snapshot's row lock).
-- Outcomes: repaired | not-pending | failed.
CREATE FUNCTION mana_ai.repair_snapshot_error(p_error_id bigint)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, public
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
    PERFORM mana_ai.rebuild_snapshot(e.user_id, e.record_id);
    UPDATE mana_ai.snapshot_errors SET repaired_at = now(), repair_error = NULL WHERE id = e.id;
    RETURN 'repaired';
  EXCEPTION WHEN OTHERS THEN
    UPDATE mana_ai.snapshot_errors SET repair_error = left(SQLERRM, 2000) WHERE id = e.id;
    RETURN 'failed';
  END;
END
$$;

-- The pending transient errors of some partitions (at most p_limit), for a
-- daemon that just took those partitions: ids to hand to
-- repair_snapshot_error one by one (one short transaction each).
CREATE FUNCTION mana_ai.pending_snapshot_errors(p_partitions int[], p_limit int)
RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai
AS $$
  SELECT e.id FROM mana_ai.snapshot_errors e
   WHERE e.transient AND e.repaired_at IS NULL AND e.partition = ANY(p_partitions)
   ORDER BY e.id
   LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION mana_ai.repair_snapshot_error(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION mana_ai.pending_snapshot_errors(int[], int) FROM PUBLIC;
