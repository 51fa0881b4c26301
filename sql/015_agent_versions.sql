-- 015: an agent's version never goes backwards (issue 18, item 5).
--
-- A hard delete notified version n+1 and removed the row; the agent
-- re-created afterwards started again at version 1, so the daemon, which
-- ignores versions older than the one it knows, ignored every later change
-- of that agent: a paused-then-resumed agent's missions never ran again.
-- Versions now come from one sequence: every store and every removal of
-- any agent takes the next value, so whatever happens to an agent record,
-- each later state of it has a higher version than every earlier one.

CREATE SEQUENCE mana_ai.agent_versions AS bigint;
SELECT setval('mana_ai.agent_versions', greatest(1, (SELECT max(version) FROM mana_ai.agent_snapshots)));

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
