-- The trigger function on mana-sync's table: folds each mission or agent
-- row into its snapshot under the snapshot's row lock. It must never make a
-- mana-sync insert fail: every error is caught and recorded in
-- mana_ai.snapshot_errors (transient ones are repaired by the owning
-- daemon, sql/functions/rebuild.sql).
--
-- Missions and agents share this function, the fold (fold_change) and the
-- error path; what differs is the snapshot table, so each kind has its own
-- SELECT ... FOR UPDATE (a static statement keeps its plan; a dynamic one
-- would be planned per row) and its own store (snapshot-store.sql).
-- Every step is an expression or a single statement: PL/pgSQL runs a
-- PERFORM or a SELECT ... FROM as a whole query, which per row cost more
-- than the fold (docs/performance.md, the trigger's profile).

CREATE OR REPLACE FUNCTION mana_ai.is_transient_sqlstate(p_sqlstate text)
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

CREATE OR REPLACE FUNCTION mana_ai.on_sync_change()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  -- from the row's table; set before anything can fail, so the error path has it
  v_kind text := CASE WHEN NEW.table_name = 'agents' THEN 'agent' ELSE 'mission' END;
  v_key bytea;
  v_mission mana_ai.mission_snapshots%ROWTYPE;
  v_agent mana_ai.agent_snapshots%ROWTYPE;
  v_map jsonb;
  v_map_vars jsonb;   -- the map as the jsonpath variable $m
  v_fold record;
  v_payload text;
  v_message text;
  v_sqlstate text;
  v_error_id bigint;
  v_transient boolean;
  v_partition int;
  v_lost jsonb;
  v_lost_payload text;
  v_next timestamptz;
  v_moved boolean;
  v_row record;
BEGIN
  -- One subtransaction a row, whatever path it takes: the second attempt
  -- runs only when the first could not read the per-field map by the name
  -- migrate found (${field_map}), i.e. mana-sync renamed the column since
  -- (docs/ops.md): then the map is read by either name from the row as
  -- JSON, which is correct for both schemas but cost ~100 µs more a row
  -- (to_jsonb looks up the type of every column; docs/performance.md).
  FOR v_attempt IN 1..2 LOOP
    BEGIN
      IF v_attempt = 1 THEN
        v_map := NEW.${field_map};
      ELSE
        v_map := mana_ai.field_map_of(to_jsonb(NEW));
      END IF;
      IF NEW.user_id IS NULL OR NEW.user_id = '' OR NEW.record_id IS NULL THEN
        RAISE EXCEPTION 'change without user_id or record_id' USING ERRCODE = '22023';
      END IF;
      v_key := mana_ai.mission_key(NEW.user_id, NEW.record_id);

      -- The common mission write in one statement: an update of a known
      -- mission, in the contract's shape (data's fields and the map's keys
      -- the same, every timestamp a string), touching nothing the schedule
      -- is derived from but nextRunAt, and newer than every timestamp
      -- stored (compared as text; jsonpath compares strings by code point,
      -- as COLLATE "C" does in a UTF-8 database). Then every field wins,
      -- the fold is record || data and field_ts || map, and store_mission
      -- would only write the record and, when nextRunAt moves, the next
      -- run: this UPDATE does exactly that, and a moved next run is
      -- announced as store_mission announces it. A nextRunAt written
      -- unchanged takes the general path, which tells the two apart (the
      -- runner's write-back always moves it: issue 30). Its WHERE is
      -- re-checked on the newest row version if another fold got there
      -- first (READ COMMITTED), so no separate row lock is needed. Anything
      -- else (no snapshot yet, an older field, a schedule field, another
      -- shape) finds no row and takes the general path below. Measured
      -- from the client, each statement a row costs several times its time
      -- in a server-side loop; this path is what brought a mission write
      -- near a plain insert (docs/performance.md).
      IF v_kind = 'mission' AND NEW.op = 'update'
         AND jsonb_typeof(NEW.data) = 'object' AND jsonb_typeof(v_map) = 'object'
         AND NOT (NEW.data ?| ARRAY['state', 'deletedAt', 'agentId',
                                    'id', '__fieldTimestamps', '__fieldActors', '__lastActor'])
         AND jsonb_path_query_array(NEW.data, '$.keyvalue().key')
             = jsonb_path_query_array(v_map, '$.keyvalue() ? (@.value.type() == "string").key') THEN
        v_map_vars := jsonb_build_object('m', v_map);
        v_moved := NEW.data ? 'nextRunAt';
        IF v_moved THEN
          v_next := mana_ai.parse_iso(mana_ai.ts_text(NEW.data -> 'nextRunAt'));
        END IF;
        UPDATE mana_ai.mission_snapshots s
           SET record = s.record || NEW.data,
               field_ts = s.field_ts || v_map,
               next_run_at = CASE WHEN v_moved THEN v_next ELSE s.next_run_at END,
               version = s.version + 1,
               last_change_id = NEW.id,
               updated_at = now()
         WHERE s.mission_key = v_key
           AND (NOT v_moved OR s.next_run_at IS DISTINCT FROM v_next)
           -- a parked mission's change unparks it: the general path does
           AND NOT s.parked
           -- a whole-array push that drops an iteration (a stale device,
           -- issue 28): the general path records the loss. An array that
           -- contains the stored one (the runner's append; a device that
           -- has every iteration) has lost nothing:
           -- each stored element lies inside one of its elements, so the
           -- stored ids are there, equal as long as none is an object or
           -- array (containment is not equality for those, so such an id
           -- takes lost_iterations' exact answer). The containment test is
           -- an operator in this statement; lost_iterations is a query of
           -- its own (0.086 ms a write-back in a burst; issue 30)
           AND (NOT (NEW.data ? 'iterations')
                OR ((NEW.data -> 'iterations') @> (s.record -> 'iterations')
                    AND NOT jsonb_path_exists(s.record -> 'iterations',
                          'strict $[*] ? (@.type() == "object" && exists(@.id)).id ? (@.type() == "array" || @.type() == "object")',
                          '{}', true))
                OR mana_ai.lost_iterations(s.record -> 'iterations', NEW.data -> 'iterations') IS NULL)
           -- a grant that changes: the general path keeps the grant state (issue 29)
           AND (NOT (NEW.data ? 'grant') OR (s.record -> 'grant') = (NEW.data -> 'grant'))
           -- no stored field timestamp later than any of the row's
           AND NOT jsonb_path_exists(s.field_ts, '$.* ? (@ > $m.*)', v_map_vars)
           -- v0.4: a field without one compares as the record's updatedAt
           AND ('${merge_rule}' = 'head'
                OR NOT jsonb_path_exists(s.record, '$.updatedAt ? (@ > $m.*)', v_map_vars))
        RETURNING s.sid, s.version, s.partition, s.state, s.deleted, s.agent_ref, s.user_ref INTO v_row;
        IF FOUND THEN
          IF NOT v_moved THEN
            RETURN NULL;  -- the schedule is as it was: nobody to wake
          END IF;
          v_payload := mana_ai.mission_payload(v_row.sid, v_row.version, v_row.partition,
                                               mana_ai.schedulable_due_ms(v_row.state, v_row.deleted, v_next),
                                               v_row.agent_ref, v_row.user_ref);
          EXIT;  -- announced below, outside the subtransaction
        END IF;
      END IF;

      -- A snapshot created concurrently is found in the second round (READ
      -- COMMITTED sees it once its transaction committed); a third failure
      -- means an isolation level that cannot see it: a serialization failure.
      FOR v_try IN 1..3 LOOP
        IF v_kind = 'agent' THEN
          SELECT * INTO v_agent FROM mana_ai.agent_snapshots WHERE agent_key = v_key FOR UPDATE;
          v_fold := mana_ai.fold_change(v_agent.record, v_agent.field_ts, NEW.record_id, NEW.op, NEW.data, v_map, NEW.created_at);
          v_payload := mana_ai.store_agent(v_agent, NEW.user_id, NEW.record_id, v_fold.record, v_fold.field_ts, NEW.id);
        ELSE
          SELECT * INTO v_mission FROM mana_ai.mission_snapshots WHERE mission_key = v_key FOR UPDATE;
          v_fold := mana_ai.fold_change(v_mission.record, v_mission.field_ts, NEW.record_id, NEW.op, NEW.data, v_map, NEW.created_at);
          v_payload := mana_ai.store_mission(v_mission, NEW.user_id, NEW.record_id, v_fold.record, v_fold.field_ts, NEW.id);
        END IF;
        EXIT WHEN v_payload IS NOT NULL;
      END LOOP;
      IF v_payload IS NULL THEN
        RAISE EXCEPTION 'snapshot of this % was created concurrently and is not visible to this transaction', v_kind
          USING ERRCODE = '40001';
      END IF;
      -- Any change of a parked mission by anyone but the runner unparks it
      -- now, and wakes its daemon (sql/functions/unpark.sql). The flag is
      -- on the row this path locked already: no lookup for the others.
      IF v_kind = 'mission' AND v_mission.parked AND NEW.client_id IS DISTINCT FROM 'mana-ai-runner' THEN
        v_payload := coalesce(mana_ai.unpark_mission(v_key, 'user'), v_payload);
      END IF;
      -- Iterations this write erased while the mission lives on (issue 28):
      -- recorded as they stood, for the partition's daemon to restore; the
      -- write's own ones too when its array lost the merge. Only when the
      -- folded array changed or the write carries one; by anyone, the runner too.
      IF v_kind = 'mission' AND v_mission.sid IS NOT NULL
         AND ((v_fold.record -> 'iterations') IS DISTINCT FROM (v_mission.record -> 'iterations')
              OR (jsonb_typeof(NEW.data) = 'object' AND NEW.data ? 'iterations'))
         AND v_fold.record IS NOT NULL AND NOT mana_ai.record_deleted(v_fold.record) THEN
        v_lost := mana_ai.lost_iterations(v_mission.record -> 'iterations', v_fold.record -> 'iterations',
                                          CASE WHEN jsonb_typeof(NEW.data) = 'object' THEN NEW.data -> 'iterations' END);
        IF v_lost IS NOT NULL THEN
          INSERT INTO mana_ai.lost_iterations (mission_key, user_id, mission_id, partition, change_id, iterations)
          VALUES (v_key, NEW.user_id, NEW.record_id, v_mission.partition, NEW.id, v_lost)
          RETURNING json_build_object('id', id, 'p', partition)::text INTO v_lost_payload;
        END IF;
      END IF;
      -- The folded grant changed: the v2 grant state follows it
      -- (sql/functions/grant-state.sql; issue 29). In this subtransaction,
      -- so a failure undoes the fold with it and is recorded like any other.
      IF v_kind = 'mission'
         AND coalesce(v_fold.record -> 'grant', 'null') IS DISTINCT FROM coalesce(v_mission.record -> 'grant', 'null') THEN
        PERFORM mana_ai.note_grant(NEW.user_id, NEW.record_id, v_fold.record -> 'grant', NEW.id);
      END IF;
      EXIT;
    EXCEPTION WHEN OTHERS THEN
      v_payload := NULL;
      v_lost_payload := NULL;
      GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
      -- undefined_column on the first attempt: the map's column was renamed
      IF v_sqlstate = '42703' AND v_attempt = 1 THEN
        CONTINUE;
      END IF;
      BEGIN
        v_transient := mana_ai.is_transient_sqlstate(v_sqlstate);
        v_partition := mana_ai.user_partition(NEW.user_id);
        INSERT INTO mana_ai.snapshot_errors (change_id, user_id, record_id, op, error, sqlstate, transient, partition, kind)
        VALUES (NEW.id, NEW.user_id, NEW.record_id, left(NEW.op, 16),
                left(coalesce(v_message, 'unknown error'), 2000), v_sqlstate, v_transient, v_partition, v_kind)
        RETURNING id INTO v_error_id;
        -- Ids and messages stay in the table; the payload says who should act.
        PERFORM pg_notify('mana_ai_snapshot_errors',
                          json_build_object('id', v_error_id, 'p', v_partition, 't', v_transient)::text);
      EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'mana_ai: could not record snapshot error for change %', NEW.id;
      END;
      EXIT;
    END;
  END LOOP;
  -- Outside the subtransaction above: there a NOTIFY cost ten times more.
  -- It cannot fail for a payload this size (at most ~120 bytes).
  IF v_payload <> '' THEN
    PERFORM pg_notify(CASE v_kind WHEN 'agent' THEN 'mana_ai_agents' ELSE 'mana_ai_missions' END, v_payload);
  END IF;
  IF v_lost_payload IS NOT NULL THEN
    PERFORM pg_notify('mana_ai_lost_iterations', v_lost_payload);
  END IF;
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.on_sync_change() FROM PUBLIC;
