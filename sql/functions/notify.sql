-- The payloads of the two schedule channels the daemons LISTEN to:
-- `mana_ai_missions` and `mana_ai_agents`. They carry refs, versions and
-- gate fields, never an id, a title or anything a user wrote. Pure: the
-- NOTIFY itself is sent by the caller, after the trigger's subtransaction
-- (a pg_notify inside it cost ~50 µs a row, outside ~5; docs/performance.md).
-- The JSON is put together as text (numbers and fixed words only):
-- json_build_object looks up the type of every argument on every call.
-- PL/pgSQL, not SQL: `text || bigint` is only stable, so a SQL body
-- declared immutable is never inlined and was set up on every call (about
-- 6 µs a row on the trigger's path; compiled once per session, under 2).

-- { s: sid, v: version, p: partition, d: due epoch ms or null (not to be
-- scheduled), g: agent ref or null, u: user ref }
CREATE OR REPLACE FUNCTION mana_ai.mission_payload(p_sid bigint, p_version bigint, p_partition int, p_due_ms bigint, p_agent_ref bigint, p_user_ref bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
  RETURN '{"s":' || p_sid || ',"v":' || p_version || ',"p":' || p_partition
         || ',"d":' || coalesce(p_due_ms::text, 'null') || ',"g":' || coalesce(p_agent_ref::text, 'null')
         || ',"u":' || coalesce(p_user_ref::text, 'null') || '}';
END
$$;

-- { g: ref, v: version, p: partition, s: gate (active | paused | archived |
-- deleted | absent), c: max concurrent, b: budget or null }
CREATE OR REPLACE FUNCTION mana_ai.agent_payload(p_ref bigint, p_version bigint, p_partition int, p_gate text, p_max_concurrent int, p_budget bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
  RETURN '{"g":' || p_ref || ',"v":' || p_version || ',"p":' || p_partition
         || ',"s":"' || p_gate || '","c":' || p_max_concurrent || ',"b":' || coalesce(p_budget::text, 'null') || '}';
END
$$;

-- The first layout's senders, replaced by the payloads above and a NOTIFY
-- by the caller (their callers are replaced in this same transaction).
DROP FUNCTION IF EXISTS mana_ai.notify_schedule(bigint, bigint, int, bigint);
DROP FUNCTION IF EXISTS mana_ai.notify_schedule(bigint, bigint, int, bigint, bigint);
DROP FUNCTION IF EXISTS mana_ai.notify_agent(bigint, bigint, int, text, int, bigint);
