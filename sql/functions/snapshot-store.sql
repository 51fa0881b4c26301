-- Stores the result of a fold under the caller's row lock: insert, update or
-- remove the snapshot row and NOTIFY only when what the reactor schedules
-- changed. One function per kind: the row types differ (a mission's
-- schedule, an agent's gate) and each is on the trigger's hot path, where a
-- shared dynamic-SQL version would cost a plan per call.

-- A mission: returns false only when it had no row and another transaction
-- created one meanwhile (the caller locks that row and folds again). Its
-- state, next run, deletion and agent are derived into columns; a change of
-- any of them NOTIFYs.
CREATE OR REPLACE FUNCTION mana_ai.store_snapshot(
  p_old mana_ai.mission_snapshots,
  p_user_id text,
  p_mission_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_state text;
  v_next timestamptz;
  v_deleted boolean;
  v_agent text;
  v_row mana_ai.mission_snapshots%ROWTYPE;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.sid IS NOT NULL THEN
      DELETE FROM mana_ai.mission_snapshots WHERE sid = p_old.sid;
      PERFORM mana_ai.notify_schedule(p_old.sid, p_old.version + 1, p_old.partition, NULL, p_old.agent_ref);
    END IF;
    RETURN true;
  END IF;

  v_state := mana_ai.ts_text(p_record -> 'state');
  v_next := mana_ai.parse_iso(mana_ai.ts_text(p_record -> 'nextRunAt'));
  v_deleted := mana_ai.record_deleted(p_record);
  v_agent := mana_ai.agent_id_of(p_record);

  IF p_old.sid IS NULL THEN
    INSERT INTO mana_ai.mission_snapshots
      (user_id, mission_id, record, field_ts, state, next_run_at, deleted, agent_id, version, last_change_id)
    VALUES (p_user_id, p_mission_id, p_record, p_field_ts, v_state, v_next, v_deleted, v_agent, 1, p_change_id)
    ON CONFLICT (mission_key) DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.sid IS NULL THEN
      RETURN false;
    END IF;
    PERFORM mana_ai.notify_schedule(v_row.sid, v_row.version, v_row.partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next), v_row.agent_ref);
    RETURN true;
  END IF;

  UPDATE mana_ai.mission_snapshots
     SET record = p_record,
         field_ts = p_field_ts,
         state = v_state,
         next_run_at = v_next,
         deleted = v_deleted,
         agent_id = v_agent,
         version = version + 1,
         last_change_id = p_change_id,
         updated_at = now()
   WHERE sid = p_old.sid
  RETURNING * INTO v_row;

  IF v_state IS DISTINCT FROM p_old.state
     OR v_next IS DISTINCT FROM p_old.next_run_at
     OR v_deleted IS DISTINCT FROM p_old.deleted
     OR v_agent IS DISTINCT FROM p_old.agent_id THEN
    PERFORM mana_ai.notify_schedule(v_row.sid, v_row.version, v_row.partition,
                                    mana_ai.schedulable_due_ms(v_state, v_deleted, v_next), v_row.agent_ref);
  END IF;
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.store_agent_snapshot(
  p_old mana_ai.agent_snapshots,
  p_user_id text,
  p_agent_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  g record;
  v_row mana_ai.agent_snapshots%ROWTYPE;
  v_version bigint;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.aid IS NOT NULL THEN
      DELETE FROM mana_ai.agent_snapshots WHERE aid = p_old.aid;
      PERFORM mana_ai.notify_agent(p_old.agent_ref, nextval('mana_ai.agent_versions'), p_old.partition, 'absent', 1, NULL);
    END IF;
    RETURN true;
  END IF;

  SELECT * INTO g FROM mana_ai.agent_gate_of(p_record);
  v_version := nextval('mana_ai.agent_versions');

  IF p_old.aid IS NULL THEN
    INSERT INTO mana_ai.agent_snapshots
      (user_id, agent_id, record, field_ts, gate, max_concurrent, max_tokens_per_day, policy, version, last_change_id)
    VALUES (p_user_id, p_agent_id, p_record, p_field_ts, g.gate, g.max_concurrent, g.max_tokens_per_day, g.policy, v_version, p_change_id)
    ON CONFLICT (agent_key) DO NOTHING
    RETURNING * INTO v_row;
    IF v_row.aid IS NULL THEN
      RETURN false;
    END IF;
    PERFORM mana_ai.notify_agent(v_row.agent_ref, v_version, v_row.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
    RETURN true;
  END IF;

  UPDATE mana_ai.agent_snapshots
     SET record = p_record,
         field_ts = p_field_ts,
         gate = g.gate,
         max_concurrent = g.max_concurrent,
         max_tokens_per_day = g.max_tokens_per_day,
         policy = g.policy,
         version = v_version,
         last_change_id = p_change_id,
         updated_at = now()
   WHERE aid = p_old.aid;

  IF g.gate IS DISTINCT FROM p_old.gate
     OR g.max_concurrent IS DISTINCT FROM p_old.max_concurrent
     OR g.max_tokens_per_day IS DISTINCT FROM p_old.max_tokens_per_day
     OR g.policy IS DISTINCT FROM p_old.policy THEN
    PERFORM mana_ai.notify_agent(p_old.agent_ref, v_version, p_old.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
  END IF;
  RETURN true;
END
$$;
