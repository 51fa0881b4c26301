-- A run's two writes in one statement each, and those of the runs ready
-- together in the same statement (issue 30; src/db/batcher.ts): charging
-- answers as they arrive, and writing plans back. Both run as their caller
-- (the runtime role) and scope the transaction to each row's user
-- (app.current_user_id, local to it) before touching that row, so
-- row-level security binds them as it binds every per-user transaction.

-- Answers' tokens (src/run/charge.ts), as they arrive; the answers that
-- arrive together go in one statement (src/db/batcher.ts). Each row is
-- inserted with the transaction scoped to its own user, once per (run,
-- answer key).
DROP FUNCTION IF EXISTS mana_ai.charge_answer(text, text, text, int, boolean, bigint, text);
CREATE OR REPLACE FUNCTION mana_ai.charge_answers(p_charges jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  c record;
BEGIN
  FOR c IN SELECT * FROM jsonb_to_recordset(p_charges)
                      AS x(user_id text, agent_id text, mission_id text, tokens int, estimated boolean, run_id bigint, answer_key text) LOOP
    IF c.user_id IS NULL OR c.user_id = '' THEN
      RAISE EXCEPTION 'refusing a charge without a user id' USING ERRCODE = '22023';
    END IF;
    PERFORM set_config('app.current_user_id', c.user_id, true);
    INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, estimated, run_id, answer_key)
    VALUES (c.user_id, c.agent_id, c.mission_id, greatest(0, c.tokens), c.estimated, c.run_id, c.answer_key)
    ON CONFLICT (run_id, answer_key) WHERE answer_key IS NOT NULL DO NOTHING;
  END LOOP;
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
DROP FUNCTION IF EXISTS mana_ai.write_back_run(bigint, bigint, bigint, text, int, text, text, text, text, text, jsonb, jsonb, text, jsonb, text);
-- Several runs in one statement (the write-backs ready together,
-- src/db/batcher.ts), in order, each in a subtransaction of its own. No
-- lock is waited for (try_lock_snapshot_for_write_back), the first run's
-- neither: the batcher sends one batch at a time, so a batch that waited
-- for one busy row would hold up every run behind it. A run whose lock is
-- busy, whose snapshot changed since its claim, or whose write fails is
-- answered `changed` with nothing of it written: the caller writes it by
-- the general path, which waits for that row alone (boundedly), reads the
-- record under the lock and reports its own errors.
CREATE OR REPLACE FUNCTION mana_ai.write_back_runs(p_worker text, p_runs jsonb)
RETURNS TABLE (ord int, outcome text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  w record;
  v_version bigint;
  v_deleted boolean;
  v_schema jsonb;
  v_insert text;
  v_insert_space text;
BEGIN
  v_schema := mana_ai.lock_sync_schema();
  IF v_schema IS NULL THEN
    RAISE EXCEPTION 'mana-sync''s table is not recorded in mana_ai.sync_table or has neither field_timestamps nor field_meta' USING ERRCODE = '42703';
  END IF;
  -- the recorded table by its columns as they stand (ROW EXCLUSIVE is held now)
  v_insert := format(
    'INSERT INTO %I.%I (app_id, table_name, record_id, user_id, op, data, %I, client_id, actor%s%%s)
     VALUES (''ai'', ''aiMissions'', $1, $2, ''update'', $3, $4, $5, $6%s%%s)',
    v_schema ->> 'schema', v_schema ->> 'name', v_schema ->> 'fieldMap',
    CASE WHEN (v_schema -> 'origin')::boolean THEN ', origin' ELSE '' END,
    CASE WHEN (v_schema -> 'origin')::boolean THEN ', ''agent''' ELSE '' END);
  v_insert_space := format(v_insert, CASE WHEN (v_schema -> 'spaceId')::boolean THEN ', space_id' ELSE '' END,
                                     CASE WHEN (v_schema -> 'spaceId')::boolean THEN ', $7' ELSE '' END);
  v_insert := format(v_insert, '', '');
  FOR w IN SELECT x.*, x.o::int AS n
             FROM ROWS FROM (jsonb_to_recordset(p_runs)
                    AS (sid bigint, version bigint, run_id bigint, attempts int, user_id text, mission_id text, iteration_id text,
                        prompt_version text, data jsonb, field_ts jsonb, client_id text, actor jsonb, space_id text)) WITH ORDINALITY
                  AS x(sid, version, run_id, attempts, user_id, mission_id, iteration_id, prompt_version, data, field_ts, client_id, actor, space_id, o) LOOP
    ord := w.n;
    BEGIN
      IF w.user_id IS NULL OR w.user_id = '' THEN
        RAISE EXCEPTION 'refusing a write-back without a user id' USING ERRCODE = '22023';
      END IF;
      PERFORM set_config('app.current_user_id', w.user_id, true);
      SELECT l.version, l.deleted INTO v_version, v_deleted FROM mana_ai.try_lock_snapshot_for_write_back(w.sid) l;
      IF v_version IS DISTINCT FROM w.version OR v_deleted THEN
        outcome := 'changed';
      ELSE
        UPDATE mana_ai.mission_runs
           SET status = 'done', iteration_id = w.iteration_id, error = NULL,
               finished_at = now(), lease_until = NULL, pending_plan = NULL, prompt_version = w.prompt_version
         WHERE run_id = w.run_id AND claimed_by = p_worker AND attempts = w.attempts AND status = 'running';
        IF NOT FOUND THEN
          outcome := 'lost-claim';
        ELSE
          IF coalesce(w.space_id, '') <> '' AND (v_schema -> 'spaceId')::boolean THEN
            EXECUTE v_insert_space USING w.mission_id, w.user_id, w.data, w.field_ts, w.client_id, w.actor, w.space_id;
          ELSE
            EXECUTE v_insert USING w.mission_id, w.user_id, w.data, w.field_ts, w.client_id, w.actor;
          END IF;
          outcome := 'written';
        END IF;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      outcome := 'changed';
    END;
    RETURN NEXT;
  END LOOP;
END
$$;

-- A batch of a run's writes in one round trip (issue 30): the answers
-- charged since the last batch, then the write-backs ready with them, in
-- the order the runs made them (src/db/sql/run-writes.ts). The charges go
-- first and in a subtransaction of their own: a charge that fails is
-- answered as one row (ord 0, outcome 'charge-failed', the SQLSTATE in
-- detail) and retried by its run; it never fails the write-backs beside it.
CREATE OR REPLACE FUNCTION mana_ai.write_run_batch(p_charges jsonb, p_worker text, p_runs jsonb)
RETURNS TABLE (ord int, outcome text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
BEGIN
  IF jsonb_array_length(p_charges) > 0 THEN
    BEGIN
      PERFORM mana_ai.charge_answers(p_charges);
    EXCEPTION WHEN OTHERS THEN
      ord := 0;
      outcome := 'charge-failed: ' || SQLSTATE;
      RETURN NEXT;
    END;
  END IF;
  IF p_worker IS NOT NULL AND jsonb_array_length(p_runs) > 0 THEN
    RETURN QUERY SELECT w.ord, w.outcome FROM mana_ai.write_back_runs(p_worker, p_runs) w;
  END IF;
END
$$;
