-- A run's two writes, each one statement (one round trip) in the common
-- case (issue 30): charging an answer as it arrives, and writing the plan
-- back. Both run as their caller (the runtime role) and scope their own
-- transaction to the user (app.current_user_id, local to it), so
-- row-level security binds them as it binds every per-user transaction.

-- One answer's tokens (src/run/charge.ts): once per (run, answer key).
CREATE OR REPLACE FUNCTION mana_ai.charge_answer(
  p_user_id text, p_agent_id text, p_mission_id text, p_tokens int, p_estimated boolean, p_run_id bigint, p_answer_key text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' THEN
    RAISE EXCEPTION 'refusing a charge without a user id' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('app.current_user_id', p_user_id, true);
  INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, estimated, run_id, answer_key)
  VALUES (p_user_id, p_agent_id, p_mission_id, greatest(0, p_tokens), p_estimated, p_run_id, p_answer_key)
  ON CONFLICT (run_id, answer_key) WHERE answer_key IS NOT NULL DO NOTHING;
END
$$;

-- The write-back of a run whose mission did not change since its claim
-- (src/write-back/write-back.ts, the fast path): the snapshot row is locked
-- as the general path locks it (lock_snapshot_for_write_back, the trigger's
-- lock, first), and only when its version is still the claim's is the run
-- finished and the row the caller built from the claim's record appended to
-- mana-sync's table (the recorded one, by its columns as they stand under
-- ROW EXCLUSIVE: lock_sync_schema). Otherwise nothing is written and the
-- answer is `changed`: the caller takes the general path, which reads the
-- record under the lock. `lost-claim`: the run is no longer this claim's.
CREATE OR REPLACE FUNCTION mana_ai.write_back_run(
  p_sid bigint, p_version bigint, p_run_id bigint, p_worker text, p_attempts int,
  p_user_id text, p_mission_id text, p_status text, p_iteration_id text, p_prompt_version text,
  p_data jsonb, p_field_ts jsonb, p_client_id text, p_actor jsonb, p_space_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_version bigint;
  v_deleted boolean;
  v_schema jsonb;
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' THEN
    RAISE EXCEPTION 'refusing a write-back without a user id' USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('app.current_user_id', p_user_id, true);
  SELECT l.version, l.deleted INTO v_version, v_deleted FROM mana_ai.lock_snapshot_for_write_back(p_sid) l;
  IF v_version IS DISTINCT FROM p_version OR v_deleted THEN
    RETURN 'changed';
  END IF;
  UPDATE mana_ai.mission_runs
     SET status = p_status, iteration_id = p_iteration_id, error = NULL,
         finished_at = now(), lease_until = NULL, pending_plan = NULL, prompt_version = p_prompt_version
   WHERE run_id = p_run_id AND claimed_by = p_worker AND attempts = p_attempts AND status = 'running';
  IF NOT FOUND THEN
    RETURN 'lost-claim';
  END IF;
  v_schema := mana_ai.lock_sync_schema();
  IF v_schema IS NULL THEN
    RAISE EXCEPTION 'mana-sync''s table is not recorded in mana_ai.sync_table or has neither field_timestamps nor field_meta' USING ERRCODE = '42703';
  END IF;
  EXECUTE format(
    'INSERT INTO %I.%I (app_id, table_name, record_id, user_id, op, data, %I, client_id, actor%s%s)
     VALUES (''ai'', ''aiMissions'', $1, $2, ''update'', $3, $4, $5, $6%s%s)',
    v_schema ->> 'schema', v_schema ->> 'name', v_schema ->> 'fieldMap',
    CASE WHEN (v_schema -> 'origin')::boolean THEN ', origin' ELSE '' END,
    CASE WHEN (v_schema -> 'spaceId')::boolean AND coalesce(p_space_id, '') <> '' THEN ', space_id' ELSE '' END,
    CASE WHEN (v_schema -> 'origin')::boolean THEN ', ''agent''' ELSE '' END,
    CASE WHEN (v_schema -> 'spaceId')::boolean AND coalesce(p_space_id, '') <> '' THEN ', $7' ELSE '' END)
  USING p_mission_id, p_user_id, p_data, p_field_ts, p_client_id, p_actor, p_space_id;
  RETURN 'written';
END
$$;
