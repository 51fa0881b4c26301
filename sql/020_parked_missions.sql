-- 020: missions that keep failing are parked where the user sees them
-- (issue 20, the dead-letter).
--
-- After MANA_AI_MAX_CONSECUTIVE_FAILURES failed runs in a row (default 5;
-- a single success resets the count) the write-back that records the last
-- of them writes one last iteration (status `failed`, a German summary that
-- says the mission stopped and why, with the last error) and parks the
-- mission here, with the snapshot version it left behind. The runner
-- plans it no more: a claim of a parked mission whose snapshot is still at
-- that version is given back unchanged and looked at again a cadence
-- later, without asking the LLM. The mission's `state` is not touched (the
-- webapp knows no state for it). Any change of the mission by the user
-- moves its version on, and the next look unparks it and runs it.

CREATE TABLE mana_ai.parked (
  mission_key    bytea       PRIMARY KEY,
  sid            bigint      NOT NULL,
  user_id        text        NOT NULL,
  mission_id     text        NOT NULL,
  -- the snapshot's version after the parking write-back: parked while it stays
  parked_version bigint      NOT NULL,
  failures       int         NOT NULL,
  last_error     text,
  parked_at      timestamptz NOT NULL DEFAULT now()
);

-- Parked missions, as long as the user has not changed them since.
CREATE VIEW mana_ai.parked_missions AS
SELECT p.user_id, p.mission_id, s.record ->> 'title' AS title, p.failures, p.last_error, p.parked_at, p.parked_version,
       s.next_run_at, p.sid
  FROM mana_ai.parked p
  JOIN mana_ai.mission_snapshots s ON s.sid = p.sid
 WHERE s.version = p.parked_version AND NOT s.deleted AND s.state = 'active';

-- The runtime role's rights (sql/011, 012), with the parked missions.
CREATE OR REPLACE FUNCTION mana_ai.grant_runtime_role(p_role text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_role pg_roles%ROWTYPE;
  v_sync regclass;
BEGIN
  SELECT * INTO v_role FROM pg_roles WHERE rolname = p_role;
  IF v_role.rolname IS NULL THEN
    RAISE EXCEPTION 'role "%" does not exist', p_role
      USING ERRCODE = '42704', HINT = 'Create it first, e.g. CREATE ROLE mana_ai_runtime LOGIN PASSWORD ''...'' NOSUPERUSER NOBYPASSRLS;';
  END IF;
  IF v_role.rolsuper OR v_role.rolbypassrls THEN
    RAISE WARNING 'role "%" is a superuser or bypasses row-level security: the grants are moot and mana-sync''s RLS does not bind it', p_role;
  END IF;

  SELECT tgrelid::regclass INTO v_sync FROM pg_trigger WHERE tgname = 'mana_ai_mission_snapshot';
  IF v_sync IS NULL THEN
    RAISE EXCEPTION 'the mana_ai snapshot trigger on sync_changes is missing; run all migrations first';
  END IF;

  EXECUTE format('GRANT USAGE ON SCHEMA mana_ai TO %I', p_role);
  EXECUTE format('GRANT SELECT ON mana_ai.mission_snapshots, mana_ai.agent_snapshots, mana_ai.schema_migrations, mana_ai.due_missions, mana_ai.mission_schedule, mana_ai.agent_budget, mana_ai.parked_missions TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON mana_ai.parked TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON mana_ai.mission_runs TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT ON mana_ai.decrypt_audit, mana_ai.token_usage TO %I', p_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE mana_ai.decrypt_audit_id_seq, mana_ai.token_usage_id_seq TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION mana_ai.lock_snapshot_for_write_back(bigint), mana_ai.repair_snapshot_error(bigint), mana_ai.pending_snapshot_errors(int[], int) TO %I', p_role);
  BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON %s TO %I', v_sync, p_role);
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'cannot grant SELECT, INSERT on % to %: this role does not own mana-sync''s table', v_sync, p_role
      USING ERRCODE = '42501', HINT = format('Ask mana-sync''s owner to run: GRANT SELECT, INSERT ON %s TO %I;', v_sync, p_role);
  END;

  INSERT INTO mana_ai.runtime_roles (role_name) VALUES (p_role)
  ON CONFLICT (role_name) DO UPDATE SET granted_at = now();
END
$$;

CREATE INDEX parked_sid ON mana_ai.parked (sid);
