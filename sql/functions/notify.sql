-- The two schedule notifications the daemons LISTEN to. Payloads carry refs,
-- versions and gate fields, never an id, a title or anything a user wrote.

-- A mission's schedule: { s: sid, v: version, p: partition, d: due epoch ms
-- or null (not to be scheduled), g: agent ref, u: user ref }; `u` is read
-- from the snapshot row the caller has just written and locked.
CREATE OR REPLACE FUNCTION mana_ai.notify_schedule(p_sid bigint, p_version bigint, p_partition int, p_due_ms bigint, p_agent_ref bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  SELECT pg_notify('mana_ai_missions',
                   json_build_object('s', p_sid, 'v', p_version, 'p', p_partition, 'd', p_due_ms, 'g', p_agent_ref,
                                     'u', (SELECT s.user_ref FROM mana_ai.mission_snapshots s WHERE s.sid = p_sid))::text)
$$;

-- An agent's gate: { g: ref, v: version, p: partition, s: gate, c: max
-- concurrent, b: budget }.
CREATE OR REPLACE FUNCTION mana_ai.notify_agent(p_ref bigint, p_version bigint, p_partition int, p_gate text, p_max_concurrent int, p_budget bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  -- No ids, no names: the ref, the partition and the gate fields.
  SELECT pg_notify('mana_ai_agents',
                   json_build_object('g', p_ref, 'v', p_version, 'p', p_partition, 's', p_gate,
                                     'c', p_max_concurrent, 'b', p_budget)::text)
$$;
