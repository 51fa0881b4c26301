-- 016: mission_runs and snapshot_errors are bounded (issue 18), the way
-- token_usage is (sql/012): each insert prunes up to 100 old rows, so the
-- tables keep up with what arrives and an idle system costs nothing; no
-- polling loop. Retention is a setting of the database, read at insert:
--   ALTER DATABASE mana_sync SET mana_ai.run_retention = '30 days';   (default)
--   ALTER DATABASE mana_sync SET mana_ai.error_retention = '7 days';  (default)
-- A value that is not an interval falls back to the default: pruning never
-- makes a claim or a mana-sync insert fail.

CREATE FUNCTION mana_ai.retention(p_name text, p_default interval)
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

-- Finished runs only: running and released ones are claims and retries.
CREATE INDEX mission_runs_finished ON mana_ai.mission_runs (finished_at)
  WHERE status IN ('done', 'failed', 'skipped', 'cancelled');

CREATE FUNCTION mana_ai.prune_mission_runs()
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

CREATE TRIGGER mission_runs_prune
  AFTER INSERT ON mana_ai.mission_runs
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_mission_runs();

-- Errors that need nothing more: not transient, or repaired. Pending
-- transient errors stay until a daemon repairs them.
CREATE FUNCTION mana_ai.prune_snapshot_errors()
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

CREATE TRIGGER snapshot_errors_prune
  AFTER INSERT ON mana_ai.snapshot_errors
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_snapshot_errors();
