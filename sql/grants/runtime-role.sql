-- The runtime role's rights, in one place: what the daemon does and what
-- that needs (docs/ops.md). migrate calls grant_runtime_role for the role it
-- is given and for every role named before, after every change.

-- What the daemon does and what that needs:
--   load the schedule, claim runs        SELECT snapshots; SELECT/INSERT/UPDATE mission_runs
--   park missions                        SELECT/INSERT/UPDATE/DELETE parked, UPDATE (parked) snapshots;
--                                        SELECT unparked (the streak's start)
--   lock a snapshot for its write-back   EXECUTE lock_snapshot_for_write_back, try_lock_snapshot_for_write_back (definers)
--   read inputs, append its iteration    SELECT/INSERT sync_changes, under RLS
--   audit decrypts, charge tokens        SELECT/INSERT decrypt_audit, token_usage (RLS)
--   choose a mission's v2 grant          SELECT mission_grants, grant_revocations (RLS; the trigger writes them)
--   research: record, cache, serve       SELECT/INSERT research_runs (RLS)
--   deep research jobs                   SELECT/INSERT/UPDATE research_jobs (RLS); EXECUTE pending_research_jobs (definer)
--   restore lost iterations              SELECT/UPDATE lost_iterations; EXECUTE lock_snapshot_for_repair (definer)
--   repair transient fold errors         EXECUTE repair_snapshot_error, pending_snapshot_errors (definer)
--   check the schema at start            SELECT schema_migrations, schema_definitions, sync_table
--   operators' views (/internal routes)  SELECT due_missions, mission_schedule, agent_budget, parked_missions, research_sources
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

  -- mana-sync's table as recorded (src/db/sync-table.ts), never one found by
  -- a trigger's name.
  SELECT format('%I.%I', s.schema_name, s.table_name)::regclass INTO v_sync FROM mana_ai.sync_table s;
  IF v_sync IS NULL THEN
    RAISE EXCEPTION 'mana-sync''s table is not recorded in mana_ai.sync_table; run all migrations first';
  END IF;

  EXECUTE format('GRANT USAGE ON SCHEMA mana_ai TO %I', p_role);
  EXECUTE format('GRANT SELECT ON mana_ai.mission_snapshots, mana_ai.agent_snapshots, mana_ai.schema_migrations, mana_ai.schema_definitions, mana_ai.settings, mana_ai.sync_table, mana_ai.due_missions, mana_ai.mission_schedule, mana_ai.agent_budget, mana_ai.parked_missions, mana_ai.research_sources TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON mana_ai.parked TO %I', p_role);
  -- parking sets the snapshot's flag; nothing else of a snapshot is the daemon's to write
  EXECUTE format('GRANT UPDATE (parked) ON mana_ai.mission_snapshots TO %I', p_role);
  EXECUTE format('GRANT SELECT ON mana_ai.unparked TO %I', p_role);
  -- restoring lost iterations: read the losses, mark them restored, lock the snapshot (definer)
  EXECUTE format('GRANT SELECT, UPDATE ON mana_ai.lost_iterations TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION mana_ai.lock_snapshot_for_repair(bytea) TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON mana_ai.mission_runs TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT ON mana_ai.decrypt_audit, mana_ai.token_usage TO %I', p_role);
  EXECUTE format('GRANT SELECT ON mana_ai.mission_grants, mana_ai.grant_revocations TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT ON mana_ai.research_runs TO %I', p_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE mana_ai.research_runs_id_seq TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON mana_ai.research_jobs TO %I', p_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE mana_ai.research_jobs_id_seq TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION mana_ai.pending_research_jobs(int[]) TO %I', p_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE mana_ai.decrypt_audit_id_seq, mana_ai.token_usage_id_seq TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION mana_ai.lock_snapshot_for_write_back(bigint, int), mana_ai.try_lock_snapshot_for_write_back(bigint), mana_ai.repair_snapshot_error(bigint), mana_ai.pending_snapshot_errors(int[], int) TO %I', p_role);
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

REVOKE ALL ON FUNCTION mana_ai.grant_runtime_role(text) FROM PUBLIC;
