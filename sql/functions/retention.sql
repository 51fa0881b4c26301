-- Bounded tables without a polling loop: each insert into mission_runs,
-- snapshot_errors or token_usage prunes up to 100 old rows. Retention is a row
-- of mana_ai.settings (docs/ops.md). Pruning never makes a claim or a
-- mana-sync insert fail.
--
-- retention('run_retention', default): the row of mana_ai.settings with
-- that key as an interval (at least 1 hour), the default when absent or
-- not an interval. Never a session setting: the pruner is a SECURITY
-- DEFINER that deletes every user's rows, and a setting is the caller's
-- to choose (issue 27, item 8). Operators write the table (docs/ops.md).

CREATE OR REPLACE FUNCTION mana_ai.retention(p_name text, p_default interval)
RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text;
BEGIN
  SELECT s.value INTO v FROM mana_ai.settings s WHERE s.key = p_name;
  RETURN greatest(coalesce(nullif(v, '')::interval, p_default), interval '1 hour');
EXCEPTION WHEN OTHERS THEN
  RETURN p_default;
END
$$;

-- Pruning rides on the inserts: after an insert statement into one of the
-- tables, rows older than their retention are deleted (any user's; skipping
-- rows another insert is deleting): up to 100 for the rare tables, which
-- prune on every insert, and up to 800 for mission_runs and token_usage,
-- which prune on one insert statement in eight (sql/triggers/retention.sql,
-- issue 30). Rows age out no faster than they arrive, and a batch inserts
-- fewer than 100 on average, so this keeps up; an idle system costs nothing. One function for the three tables; each branch is a
-- static statement (its own plan). SECURITY DEFINER: the daemon itself may
-- only insert. A failure is swallowed: the next insert prunes.
--   mission_runs     finished runs only (running and released ones are
--                    claims and retries), after the setting run_retention;
--   snapshot_errors  errors that need nothing more (not transient, or
--                    repaired), after the setting error_retention;
--   token_usage      after token_usage_retention() (48 h);
--   lost_iterations  settled losses (issue 28), after the setting
--                    run_retention; pending ones are never pruned.
CREATE OR REPLACE FUNCTION mana_ai.prune_old_rows()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  BEGIN
    IF TG_TABLE_NAME = 'mission_runs' THEN
      -- The oldest finished run, the first entry of mission_runs_finished
      -- (min(), so the index's end whatever the statistics say; EXISTS of
      -- nothing old scanned the table when the plan was a seq scan):
      -- younger than the least retention there is (an hour), nothing is
      -- due, and neither the settings nor the delete are read.
      IF coalesce((SELECT min(r.finished_at) FROM mana_ai.mission_runs r
                    WHERE r.status IN ('done', 'failed', 'skipped', 'cancelled')), 'infinity') >= now() - interval '1 hour' THEN
        RETURN NULL;
      END IF;
      DELETE FROM mana_ai.mission_runs
       WHERE run_id IN (SELECT r.run_id FROM mana_ai.mission_runs r
                         WHERE r.status IN ('done', 'failed', 'skipped', 'cancelled')
                           AND r.finished_at < now() - mana_ai.retention('run_retention', interval '30 days')
                         ORDER BY r.finished_at
                         LIMIT 800
                         FOR UPDATE SKIP LOCKED);
    ELSIF TG_TABLE_NAME = 'snapshot_errors' THEN
      DELETE FROM mana_ai.snapshot_errors
       WHERE id IN (SELECT e.id FROM mana_ai.snapshot_errors e
                     WHERE e.created_at < now() - mana_ai.retention('error_retention', interval '7 days')
                       AND NOT (e.transient AND e.repaired_at IS NULL)
                     ORDER BY e.created_at
                     LIMIT 100
                     FOR UPDATE SKIP LOCKED);
    ELSIF TG_TABLE_NAME = 'lost_iterations' THEN
      DELETE FROM mana_ai.lost_iterations
       WHERE id IN (SELECT l.id FROM mana_ai.lost_iterations l
                     WHERE l.restored_at IS NOT NULL
                       AND l.restored_at < now() - mana_ai.retention('run_retention', interval '30 days')
                     ORDER BY l.restored_at
                     LIMIT 100
                     FOR UPDATE SKIP LOCKED);
    ELSIF TG_TABLE_NAME = 'token_usage' THEN
      IF coalesce((SELECT min(u.ts) FROM mana_ai.token_usage u), 'infinity') >= now() - mana_ai.token_usage_retention() THEN
        RETURN NULL;
      END IF;
      DELETE FROM mana_ai.token_usage
       WHERE id IN (SELECT u.id FROM mana_ai.token_usage u
                     WHERE u.ts < now() - mana_ai.token_usage_retention()
                     ORDER BY u.ts
                     LIMIT 800
                     FOR UPDATE SKIP LOCKED);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    NULL; -- never fail the claim, write-back or mana-sync insert that inserted
  END;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.prune_old_rows() FROM PUBLIC;
