-- What an agent used and when its budget frees (CONTRACT.md section 10).
-- Run as the caller: the caller's transaction is scoped to the user.

-- How long usage is kept: twice the budget window, so "what did it spend
-- yesterday" can still be answered, and no longer.
CREATE OR REPLACE FUNCTION mana_ai.token_usage_retention()
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT interval '48 hours' $$;

-- Tokens an agent used in the rolling 24 h window. Runs as the caller:
-- the caller's transaction must be scoped to p_user_id.
CREATE OR REPLACE FUNCTION mana_ai.agent_tokens_used(p_user_id text, p_agent_id text)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT coalesce(sum(u.tokens_used), 0)::bigint
    FROM mana_ai.token_usage u
   WHERE u.user_id = p_user_id AND u.agent_id = p_agent_id AND u.ts > now() - interval '24 hours'
$$;

-- The first moment at which the agent's usage in the window falls below
-- p_budget: walking the counted rows oldest first, the time the first row
-- leaves the window after which the newer rows alone stay under budget
-- (when dropping the oldest row is enough, that is the oldest row + 24 h).
-- NULL when no such moment comes without a change of budget (budget 0).
CREATE OR REPLACE FUNCTION mana_ai.budget_frees_at(p_user_id text, p_agent_id text, p_budget bigint)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT x.ts + interval '24 hours'
    FROM (SELECT u.ts, u.id,
                 coalesce(sum(u.tokens_used) OVER (ORDER BY u.ts DESC, u.id DESC
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS newer
            FROM mana_ai.token_usage u
           WHERE u.user_id = p_user_id AND u.agent_id = p_agent_id AND u.ts > now() - interval '24 hours') x
   WHERE x.newer < p_budget
   ORDER BY x.ts, x.id
   LIMIT 1
$$;

-- The agent's name as it stands now, for the write-back's actor (read in
-- the write-back's transaction). NULL when the agent record is gone.
CREATE OR REPLACE FUNCTION mana_ai.agent_name(p_user_id text, p_agent_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT mana_ai.ts_text(a.record -> 'name')
    FROM mana_ai.agent_snapshots a
   WHERE a.agent_key = mana_ai.mission_key(p_user_id, p_agent_id)
$$;
