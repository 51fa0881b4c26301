-- 013: a user ref on every mission snapshot and in every schedule NOTIFY,
-- so the daemon can serve due runs round-robin across users (issue 13)
-- without holding user ids in memory: a 53-bit digest of the user id,
-- exact as a JS number, like agent_ref (012). Two users sharing a ref only
-- share a round-robin turn; nothing else reads it.

CREATE FUNCTION mana_ai.user_ref(p_user_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT (('x' || encode(substr(sha256(convert_to(p_user_id, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint >> 3)
$$;

ALTER TABLE mana_ai.mission_snapshots
  ADD COLUMN user_ref bigint GENERATED ALWAYS AS (mana_ai.user_ref(user_id)) STORED;

-- Same signature as 012 (every caller stays as it is); the payload gains
-- `u`, read from the snapshot row the caller has just written and locked.
CREATE OR REPLACE FUNCTION mana_ai.notify_schedule(p_sid bigint, p_version bigint, p_partition int, p_due_ms bigint, p_agent_ref bigint)
RETURNS void
LANGUAGE sql VOLATILE
AS $$
  SELECT pg_notify('mana_ai_missions',
                   json_build_object('s', p_sid, 'v', p_version, 'p', p_partition, 'd', p_due_ms, 'g', p_agent_ref,
                                     'u', (SELECT s.user_ref FROM mana_ai.mission_snapshots s WHERE s.sid = p_sid))::text)
$$;
