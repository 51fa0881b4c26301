-- Stores the result of a fold under the caller's row lock: insert, update or
-- remove the snapshot row. Returns what to NOTIFY on the kind's channel:
--   NULL  the record had no row and another transaction created one
--         meanwhile: the caller locks that row and folds again;
--   ''    stored, and what the reactor schedules did not change: nobody is
--         woken (an iteration or a title must not take the cluster-wide
--         NOTIFY lock at commit);
--   else  stored; the payload for the caller to send (mission_payload,
--         agent_payload), after the trigger's subtransaction.
-- One function per kind: the row types differ (a mission's schedule, an
-- agent's gate) and each is on the trigger's hot path, where a shared
-- dynamic-SQL version would be planned per row.

-- A mission: its state, next run, deletion and agent are derived into
-- columns; a change of any of them is a schedule change.
CREATE OR REPLACE FUNCTION mana_ai.store_mission(
  p_old mana_ai.mission_snapshots,
  p_user_id text,
  p_mission_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  v_state text;
  v_next timestamptz;
  v_deleted boolean;
  v_agent text;
  v_sid bigint;
  v_partition int;
  v_agent_ref bigint;
  v_user_ref bigint;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.sid IS NOT NULL THEN
      DELETE FROM mana_ai.mission_snapshots WHERE sid = p_old.sid;
      RETURN mana_ai.mission_payload(p_old.sid, p_old.version + 1, p_old.partition, NULL, p_old.agent_ref, p_old.user_ref);
    END IF;
    RETURN '';
  END IF;

  v_state := mana_ai.ts_text(p_record -> 'state');
  -- Most changes leave nextRunAt as it was (a title, an iteration): no parse.
  IF p_old.sid IS NOT NULL AND p_record -> 'nextRunAt' IS NOT DISTINCT FROM p_old.record -> 'nextRunAt' THEN
    v_next := p_old.next_run_at;
  ELSE
    v_next := mana_ai.parse_iso(mana_ai.ts_text(p_record -> 'nextRunAt'));
  END IF;
  v_deleted := mana_ai.record_deleted(p_record);
  v_agent := mana_ai.agent_id_of(p_record);

  IF p_old.sid IS NULL THEN
    INSERT INTO mana_ai.mission_snapshots
      (user_id, mission_id, record, field_ts, state, next_run_at, deleted, agent_id, version, last_change_id)
    VALUES (p_user_id, p_mission_id, p_record, p_field_ts, v_state, v_next, v_deleted, v_agent, 1, p_change_id)
    ON CONFLICT (mission_key) DO NOTHING
    RETURNING sid, partition, agent_ref, user_ref INTO v_sid, v_partition, v_agent_ref, v_user_ref;
    IF v_sid IS NULL THEN
      RETURN NULL;
    END IF;
    RETURN mana_ai.mission_payload(v_sid, 1, v_partition, mana_ai.schedulable_due_ms(v_state, v_deleted, v_next), v_agent_ref, v_user_ref);
  END IF;

  -- The caller holds the row's lock: its new version is the old one + 1,
  -- and nothing needs reading back. Most changes leave the schedule alone
  -- (a title, an iteration): then only the record is written, the derived
  -- columns (and the generated agent_ref) are not touched, and nobody is
  -- woken. Two static statements, not one dynamic: each keeps its plan.
  IF v_state IS NOT DISTINCT FROM p_old.state
     AND v_next IS NOT DISTINCT FROM p_old.next_run_at
     AND v_deleted IS NOT DISTINCT FROM p_old.deleted
     AND v_agent IS NOT DISTINCT FROM p_old.agent_id THEN
    UPDATE mana_ai.mission_snapshots
       SET record = p_record,
           field_ts = p_field_ts,
           version = version + 1,
           last_change_id = p_change_id,
           updated_at = now()
     WHERE sid = p_old.sid;
    RETURN '';
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
   WHERE sid = p_old.sid;
  RETURN mana_ai.mission_payload(p_old.sid, p_old.version + 1, p_old.partition,
                                 mana_ai.schedulable_due_ms(v_state, v_deleted, v_next),
                                 mana_ai.agent_ref(p_user_id, v_agent), p_old.user_ref);
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.store_agent(
  p_old mana_ai.agent_snapshots,
  p_user_id text,
  p_agent_id text,
  p_record jsonb,
  p_field_ts jsonb,
  p_change_id uuid)
RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
  g record;
  v_row mana_ai.agent_snapshots%ROWTYPE;
  v_version bigint;
BEGIN
  IF p_record IS NULL THEN
    IF p_old.aid IS NOT NULL THEN
      DELETE FROM mana_ai.agent_snapshots WHERE aid = p_old.aid;
      RETURN mana_ai.agent_payload(p_old.agent_ref, nextval('mana_ai.agent_versions'), p_old.partition, 'absent', 1, NULL);
    END IF;
    RETURN '';
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
      RETURN NULL;
    END IF;
    RETURN mana_ai.agent_payload(v_row.agent_ref, v_version, v_row.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
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
    RETURN mana_ai.agent_payload(p_old.agent_ref, v_version, p_old.partition, g.gate, g.max_concurrent, g.max_tokens_per_day);
  END IF;
  RETURN '';
END
$$;

-- The first layout's names for these (they returned a boolean and sent the
-- NOTIFY themselves); their callers are replaced in this same transaction.
DROP FUNCTION IF EXISTS mana_ai.store_snapshot(mana_ai.mission_snapshots, text, text, jsonb, jsonb, uuid);
DROP FUNCTION IF EXISTS mana_ai.store_agent_snapshot(mana_ai.agent_snapshots, text, text, jsonb, jsonb, uuid);
