-- Every SECURITY DEFINER function pinned, closed to PUBLIC and to any role
-- but the runtime roles, and owned by a role that is not a superuser. migrate runs it after every migration and definition change,
-- so a definer added later is covered at once (docs/ops.md).

-- Checks the invariants above and gives the definers a non-superuser owner.
-- Not itself a definer: `migrate` runs it as the migrating role after every
-- migration, so functions that later migrations add are covered too.
CREATE OR REPLACE FUNCTION mana_ai.secure_definers()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  f record;
  v_sync text;
  v_super boolean;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig, p.prosecdef, p.proconfig
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'mana_ai'
       AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%'))
  LOOP
    IF NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c
                    WHERE c LIKE 'search_path=%' AND c ~ '(^search_path=|,\s*)pg_temp\s*$'
                      AND c !~ '(=|,\s*)public(,|$)') THEN
      RAISE EXCEPTION 'function % must pin search_path with pg_temp last and without public', f.sig
        USING HINT = 'every function of mana_ai that sets search_path ends it with pg_temp (sql/functions/secure-definers.sql)';
    END IF;
  END LOOP;

  -- No definer is callable by PUBLIC, whether or not its own file says
  -- REVOKE; and no role but its owner, the definer role, the migrator and
  -- the runtime roles (sql/grants/runtime-role.sql) may execute one.
  FOR f IN
    SELECT p.oid::regprocedure AS sig, p.oid
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'mana_ai' AND p.prosecdef
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f.sig);
    SELECT string_agg(pg_catalog.pg_get_userbyid(a.grantee), ', ') INTO v_sync
      FROM pg_catalog.pg_proc p, LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = f.oid AND a.grantee <> p.proowner
       AND pg_catalog.pg_get_userbyid(a.grantee) <> ALL (ARRAY['mana_ai_definer', current_user::text]
             || coalesce((SELECT array_agg(r.role_name) FROM mana_ai.runtime_roles r), ARRAY[]::text[]));
    IF v_sync IS NOT NULL THEN
      RAISE EXCEPTION 'SECURITY DEFINER function % may be executed by %, which is neither its owner nor a runtime role', f.sig, v_sync
        USING HINT = format('REVOKE EXECUTE ON FUNCTION %s FROM %s;', f.sig, v_sync);
    END IF;
  END LOOP;
  v_sync := NULL;

  SELECT rolsuper INTO v_super FROM pg_catalog.pg_roles WHERE rolname = current_user;
  IF NOT v_super THEN
    -- A non-superuser migrator owns what it creates: already not a superuser.
    -- Definers a superuser created earlier keep a superuser owner; say so.
    FOR f IN
      SELECT p.oid::regprocedure AS sig
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_roles r ON r.oid = p.proowner
       WHERE n.nspname = 'mana_ai' AND p.prosecdef AND r.rolsuper
    LOOP
      RAISE WARNING 'SECURITY DEFINER function % is owned by a superuser; run npm run migrate once as a superuser to hand it to mana_ai_definer', f.sig;
    END LOOP;
    RETURN;
  END IF;

  BEGIN
    CREATE ROLE mana_ai_definer NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are cluster-wide; another database or migrator made it
  END;
  -- Not ALTERed here (migrators of several databases may run at once);
  -- a role of that name that someone made powerful is refused instead.
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
              WHERE rolname = 'mana_ai_definer' AND (rolsuper OR rolbypassrls OR rolcanlogin)) THEN
    RAISE EXCEPTION 'role mana_ai_definer exists but is a superuser, bypasses RLS or can log in'
      USING HINT = 'ALTER ROLE mana_ai_definer NOLOGIN NOSUPERUSER NOBYPASSRLS;';
  END IF;

  -- What the definers do: fold into snapshots, record and repair errors,
  -- lock a snapshot for the write-back, prune usage. No CREATE anywhere.
  GRANT USAGE ON SCHEMA mana_ai TO mana_ai_definer;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA mana_ai TO mana_ai_definer;
  GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA mana_ai TO mana_ai_definer;
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mana_ai TO mana_ai_definer;
  -- The rebuild reads mana-sync's table, scoped to the mission's user by
  -- app.current_user_id (its row-level security binds this role).
  -- The table recorded in mana_ai.sync_table (src/db/sync-table.ts), never
  -- one found by a trigger's name.
  SELECT format('%I.%I', s.schema_name, s.table_name) INTO v_sync FROM mana_ai.sync_table s;
  IF v_sync IS NOT NULL THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO mana_ai_definer', (SELECT s.schema_name FROM mana_ai.sync_table s));
    EXECUTE format('GRANT SELECT ON %s TO mana_ai_definer', v_sync);
  END IF;
  -- Usage pruning deletes old rows of every user (row-level security on
  -- token_usage would limit it to the inserting user's).
  IF to_regclass('mana_ai.token_usage') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                      WHERE schemaname = 'mana_ai' AND tablename = 'token_usage' AND policyname = 'token_usage_maintenance') THEN
    CREATE POLICY token_usage_maintenance ON mana_ai.token_usage TO mana_ai_definer USING (true);
  END IF;
  -- The pending deep-research jobs of a daemon's partitions, across users (sql/functions/research-jobs.sql).
  IF to_regclass('mana_ai.research_jobs') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                      WHERE schemaname = 'mana_ai' AND tablename = 'research_jobs' AND policyname = 'research_jobs_pending') THEN
    CREATE POLICY research_jobs_pending ON mana_ai.research_jobs FOR SELECT TO mana_ai_definer USING (true);
  END IF;
  -- The trigger notes every user's v2 grants (sql/functions/grant-state.sql).
  IF to_regclass('mana_ai.mission_grants') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                      WHERE schemaname = 'mana_ai' AND tablename = 'mission_grants' AND policyname = 'mission_grants_trigger') THEN
    CREATE POLICY mission_grants_trigger ON mana_ai.mission_grants TO mana_ai_definer USING (true) WITH CHECK (true);
  END IF;
  IF to_regclass('mana_ai.grant_revocations') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                      WHERE schemaname = 'mana_ai' AND tablename = 'grant_revocations' AND policyname = 'grant_revocations_trigger') THEN
    CREATE POLICY grant_revocations_trigger ON mana_ai.grant_revocations TO mana_ai_definer USING (true) WITH CHECK (true);
  END IF;

  FOR f IN
    SELECT p.oid::regprocedure AS sig
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'mana_ai' AND p.prosecdef
       AND p.proowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'mana_ai_definer')
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO mana_ai_definer', f.sig);
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.secure_definers() FROM PUBLIC;
