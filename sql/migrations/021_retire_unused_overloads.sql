-- 021: the first layout left an overload nothing calls any more:
-- notify_schedule without the agent ref (every store passes it since the
-- agents). A database that never had it skips this (IF EXISTS).
DROP FUNCTION IF EXISTS mana_ai.notify_schedule(bigint, bigint, int, bigint);
