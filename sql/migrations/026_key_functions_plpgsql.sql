-- 026: the four key functions in PL/pgSQL, each with the very expression
-- the baseline gave it (issue 30). Same inputs, same values: no stored
-- column changes, so nothing is rewritten (020's rule is about changing
-- a key; this changes how the same key is computed).
--
-- Why: a stored generated column's expression is prepared anew every time
-- an INSERT or UPDATE statement starts its executor, and a PL/pgSQL
-- function (the trigger, store_mission) starts one per row it writes. A
-- LANGUAGE sql function there is parsed (inlined) or set up (fmgr_sql) on
-- every such start: measured on mission_snapshots from a PL/pgSQL loop,
-- about 85 µs an INSERT against 25 without the four columns, and 50 µs an
-- UPDATE that moves the schedule against 23. A PL/pgSQL function is
-- compiled once per session and only evaluated: 33–47 and 28–43 µs. Set
-- statements (one executor for many rows) were never affected.
--
-- Nothing else changes: IMMUTABLE, PARALLEL SAFE, STRICT, the signatures
-- and the defaults stay; test/key-functions.test.ts holds the values to
-- the baseline's expressions.

CREATE OR REPLACE FUNCTION mana_ai.mission_key(p_user_id text, p_mission_id text)
RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
BEGIN
  RETURN sha256(convert_to(p_user_id, 'UTF8') || '\x00'::bytea || convert_to(p_mission_id, 'UTF8'));
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.user_partition(p_user_id text, p_partitions int DEFAULT 64)
RETURNS int
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
BEGIN
  RETURN (('x' || substr(md5(p_user_id), 1, 8))::bit(32)::bigint % p_partitions)::int;
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.agent_ref(p_user_id text, p_agent_id text)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
BEGIN
  RETURN (('x' || encode(substr(mana_ai.mission_key(p_user_id, p_agent_id), 1, 7), 'hex'))::bit(56)::bigint >> 3);
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.user_ref(p_user_id text)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE STRICT
AS $$
BEGIN
  RETURN (('x' || encode(substr(sha256(convert_to(p_user_id, 'UTF8')), 1, 7), 'hex'))::bit(56)::bigint >> 3);
END
$$;
