-- The pending deep-research jobs of some partitions, for the daemon that
-- owns them (at start and when partitions move), across users: row-level
-- security on research_jobs shows a runtime role one user's rows only, so
-- this reads them as the definer. Ids and timing only: no query, no answer.
CREATE OR REPLACE FUNCTION mana_ai.pending_research_jobs(p_partitions int[])
RETURNS TABLE (id bigint, user_id text, mission_id text, sid bigint, due_at timestamptz, task_id text, polls int, submitted_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT j.id, j.user_id, j.mission_id, j.sid, j.due_at, j.task_id, j.polls, j.submitted_at
    FROM mana_ai.research_jobs j
   WHERE j.status = 'pending' AND j.partition = ANY (p_partitions)
   ORDER BY j.id
$$;
REVOKE ALL ON FUNCTION mana_ai.pending_research_jobs(int[]) FROM PUBLIC;
