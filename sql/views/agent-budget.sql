-- An operators' view (docs/ops.md). Read-only; it never hides a column's
-- meaning behind the daemon's in-memory state.

-- Operators' view: per agent, what it used in the window, its budget, and
-- the next time it may run (now when nothing holds it; NULL when only the
-- user can change that: paused, archived, deleted, or budget 0).
-- security_invoker: token_usage has row-level security, and a view owned by
-- the migrator would read it as its owner (every user's rows, for anyone
-- who may select the view: issue 27). As the caller, the runtime role sees
-- a user's usage only inside that user's scope; operators' tools that
-- bypass RLS see all.
CREATE OR REPLACE VIEW mana_ai.agent_budget WITH (security_invoker = true) AS
SELECT a.user_id,
       a.agent_id,
       mana_ai.ts_text(a.record -> 'name') AS name,
       a.gate                              AS state,
       a.max_concurrent,
       a.max_tokens_per_day                AS budget,
       u.used                              AS used_24h,
       u.estimated_rows,
       greatest(u.used - a.max_tokens_per_day, 0) AS overshoot,
       (SELECT count(*) FROM mana_ai.mission_runs r
         WHERE r.agent_key = a.agent_key AND r.status = 'running')::int AS runs_in_flight,
       (SELECT count(*) FROM mana_ai.mission_snapshots m
         WHERE m.user_id = a.user_id AND m.agent_id = a.agent_id AND NOT m.deleted)::int AS missions,
       CASE WHEN a.gate <> 'active' THEN NULL
            WHEN a.max_tokens_per_day IS NULL OR u.used < a.max_tokens_per_day THEN now()
            ELSE mana_ai.budget_frees_at(a.user_id, a.agent_id, a.max_tokens_per_day) END AS may_run_at,
       a.partition,
       a.version,
       a.updated_at,
       -- deep research jobs submitted for the agent's missions in the window (issue 31: counted per agent)
       (SELECT count(*) FROM mana_ai.research_jobs j
         WHERE j.user_id = a.user_id AND j.agent_id = a.agent_id AND j.submitted_at > now() - interval '24 hours')::int AS research_jobs_24h
  FROM mana_ai.agent_snapshots a
  CROSS JOIN LATERAL (
        SELECT coalesce(sum(t.tokens_used), 0)::bigint AS used,
               count(*) FILTER (WHERE t.estimated)::int AS estimated_rows
          FROM mana_ai.token_usage t
         WHERE t.user_id = a.user_id AND t.agent_id = a.agent_id AND t.ts > now() - interval '24 hours') u;
