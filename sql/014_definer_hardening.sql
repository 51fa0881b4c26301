-- 014: nothing the runtime role can do escalates (issue 18, item 1).
--
-- An independent review made the runtime role superuser: the SECURITY
-- DEFINER function repair_snapshot_error had `search_path = pg_catalog,
-- mana_ai, public` without pg_temp, so Postgres searched the caller's
-- temporary schema first for relations, and fold_record (called under the
-- definer's rights) read an unqualified `sync_changes`: a temporary view of
-- that name calling a temporary function ran that function as the owner.
--
-- What holds from here on, for every function in mana_ai:
--   * a function that pins search_path ends it with pg_temp (searched last,
--     so a temporary object never shadows anything); `public` is gone from
--     every path;
--   * the relation that lives outside mana_ai (mana-sync's table) is
--     schema-qualified, found through the snapshot trigger as
--     grant_runtime_role finds it;
--   * every SECURITY DEFINER function pins its search_path and is owned by
--     a role that is not a superuser: mana_ai.secure_definers() (below),
--     which `migrate` runs after every migration, checks both and, when the
--     migrating role is a superuser, hands the definers to the NOLOGIN role
--     mana_ai_definer with exactly the rights they use (docs/ops.md).
-- test/definer-hardening.test.ts replays the review's attack as the
-- runtime role and checks the catalog.

-- fold_record reads mana-sync's table by its qualified name. The name is
-- the trigger's table, whatever schema mana-sync created it in.
DO $do$
DECLARE
  v_sync text;
BEGIN
  SELECT format('%I.%I', n.nspname, c.relname) INTO v_sync
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE t.tgname = 'mana_ai_mission_snapshot';
  IF v_sync IS NULL THEN
    RAISE EXCEPTION 'the mana_ai snapshot trigger on sync_changes is missing';
  END IF;
  EXECUTE format($f$
CREATE OR REPLACE FUNCTION mana_ai.fold_record(
  p_user_id text,
  p_app_id text,
  p_table_name text,
  p_record_id text,
  OUT record jsonb,
  OUT field_ts jsonb,
  OUT last_change_id uuid,
  OUT rows_folded int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  r record;
  v_record jsonb;
  v_fts jsonb;
BEGIN
  rows_folded := 0;
  FOR r IN
    SELECT c.id, c.op, c.data, c.field_timestamps, c.created_at
      FROM %s c
     WHERE c.app_id = p_app_id AND c.table_name = p_table_name
       AND c.user_id = p_user_id AND c.record_id = p_record_id
     ORDER BY c.created_at, c.id
  LOOP
    rows_folded := rows_folded + 1;
    BEGIN
      SELECT f.record, f.field_ts INTO STRICT v_record, v_fts
        FROM mana_ai.fold_change(record, field_ts, p_record_id, r.op, r.data, r.field_timestamps, r.created_at) AS f;
      record := v_record;
      field_ts := v_fts;
      last_change_id := r.id;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- a row the trigger would have recorded as an error changes nothing
    END;
  END LOOP;
END
$$ $f$, v_sync);
END
$do$;

-- Every pinned search_path: without `public`, with pg_temp last.
DO $do$
DECLARE
  f record;
  v_path text;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig, cfg
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
      CROSS JOIN LATERAL unnest(p.proconfig) AS cfg
     WHERE n.nspname = 'mana_ai' AND cfg LIKE 'search_path=%'
  LOOP
    SELECT string_agg(e, ', ' ORDER BY i) INTO v_path
      FROM unnest(string_to_array(replace(substr(f.cfg, length('search_path=') + 1), ' ', ''), ','))
           WITH ORDINALITY AS x(e, i)
     WHERE e NOT IN ('public', 'pg_temp', '"$user"');
    EXECUTE format('ALTER FUNCTION %s SET search_path = %s, pg_temp', f.sig, v_path);
  END LOOP;
END
$do$;

-- Checks the invariants above and gives the definers a non-superuser owner.
-- Not itself a definer: `migrate` runs it as the migrating role after every
-- migration, so functions that later migrations add are covered too.
CREATE FUNCTION mana_ai.secure_definers()
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
        USING HINT = 'every function of mana_ai that sets search_path ends it with pg_temp (sql/014)';
    END IF;
  END LOOP;

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
  SELECT format('%I.%I', n.nspname, c.relname) INTO v_sync
    FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE t.tgname = 'mana_ai_mission_snapshot';
  IF v_sync IS NOT NULL THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO mana_ai_definer', split_part(v_sync, '.', 1));
    EXECUTE format('GRANT SELECT ON %s TO mana_ai_definer', v_sync);
  END IF;
  -- Usage pruning deletes old rows of every user (row-level security on
  -- token_usage would limit it to the inserting user's).
  IF to_regclass('mana_ai.token_usage') IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policies
                      WHERE schemaname = 'mana_ai' AND tablename = 'token_usage' AND policyname = 'token_usage_maintenance') THEN
    CREATE POLICY token_usage_maintenance ON mana_ai.token_usage TO mana_ai_definer USING (true);
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
