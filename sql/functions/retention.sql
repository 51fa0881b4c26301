-- Bounded tables without a polling loop: each insert into mission_runs,
-- snapshot_errors or token_usage prunes up to 100 old rows. Retention is a
-- setting of the database (docs/ops.md). Pruning never makes a claim or a
-- mana-sync insert fail.

CREATE OR REPLACE FUNCTION mana_ai.retention(p_name text, p_default interval)
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RETURN greatest(coalesce(nullif(current_setting('mana_ai.' || p_name, true), '')::interval, p_default), interval '1 hour');
EXCEPTION WHEN OTHERS THEN
  RETURN p_default;
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.prune_mission_runs()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  BEGIN
    DELETE FROM mana_ai.mission_runs
     WHERE run_id IN (SELECT r.run_id FROM mana_ai.mission_runs r
                       WHERE r.status IN ('done', 'failed', 'skipped', 'cancelled')
                         AND r.finished_at < now() - mana_ai.retention('run_retention', interval '30 days')
                       ORDER BY r.finished_at
                       LIMIT 100
                       FOR UPDATE SKIP LOCKED);
  EXCEPTION WHEN OTHERS THEN
    NULL; -- never fail the claim that inserted; the next insert prunes
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.prune_mission_runs() FROM PUBLIC;

-- Errors that need nothing more: not transient, or repaired. Pending
-- transient errors stay until a daemon repairs them.
CREATE OR REPLACE FUNCTION mana_ai.prune_snapshot_errors()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  BEGIN
    DELETE FROM mana_ai.snapshot_errors
     WHERE id IN (SELECT e.id FROM mana_ai.snapshot_errors e
                   WHERE e.created_at < now() - mana_ai.retention('error_retention', interval '7 days')
                     AND NOT (e.transient AND e.repaired_at IS NULL)
                   ORDER BY e.created_at
                   LIMIT 100
                   FOR UPDATE SKIP LOCKED);
  EXCEPTION WHEN OTHERS THEN
    NULL; -- never fail the insert that recorded an error (mana-sync's own)
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.prune_snapshot_errors() FROM PUBLIC;

-- Pruning rides on the inserts: each new row deletes up to 100 rows older
-- than the retention (any user's; skipping rows another insert is deleting).
-- Rows age out no faster than they arrive, so this keeps up, and an idle
-- system costs nothing. SECURITY DEFINER: the daemon itself may only insert.
CREATE OR REPLACE FUNCTION mana_ai.prune_token_usage()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  DELETE FROM mana_ai.token_usage
   WHERE id IN (SELECT u.id FROM mana_ai.token_usage u
                 WHERE u.ts < now() - mana_ai.token_usage_retention()
                 ORDER BY u.ts
                 LIMIT 100
                 FOR UPDATE SKIP LOCKED);
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.prune_token_usage() FROM PUBLIC;
