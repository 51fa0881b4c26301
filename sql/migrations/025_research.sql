-- 025: research of each run (issue 31; CONTRACT.md section 15), in the
-- runner's schema: what a run asked (kind, query, language), what came of
-- it and the sources it brought. The rows are the user's record of which
-- sources a plan used (GET /api/v1/me/ai-research) and the news cache: a
-- search of one (user, query, language, local day) is made once, every
-- later run of that user that day reuses its sources (`cached`).
CREATE TABLE mana_ai.research_runs (
  id          bigserial   PRIMARY KEY,
  user_id     text        NOT NULL,
  mission_id  text        NOT NULL,
  due_at      timestamptz NOT NULL,
  kind        text        NOT NULL CHECK (kind IN ('news', 'deep')),
  query       text        NOT NULL,
  language    text        NOT NULL CHECK (language IN ('de', 'en')),
  -- the day in MANA_AI_TIMEZONE the search was made for (the cache's key)
  local_day   date        NOT NULL,
  outcome     text        NOT NULL CHECK (outcome IN ('ok', 'cached', 'empty', 'failed', 'timeout', 'abandoned', 'skipped')),
  -- [{url, title, snippet, publishedAt?}], at most 8
  sources     jsonb       NOT NULL DEFAULT '[]',
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX research_runs_cache ON mana_ai.research_runs (user_id, kind, language, local_day, query) WHERE outcome IN ('ok', 'cached');
CREATE INDEX research_runs_user_mission ON mana_ai.research_runs (user_id, mission_id, id DESC);
ALTER TABLE mana_ai.research_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE mana_ai.research_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY research_runs_own_rows ON mana_ai.research_runs
  USING (user_id = current_setting('app.current_user_id', true))
  WITH CHECK (user_id = current_setting('app.current_user_id', true));
REVOKE UPDATE, DELETE, TRUNCATE ON mana_ai.research_runs FROM PUBLIC;

-- Deep research jobs (mana-research; CONTRACT.md section 15): one per
-- (mission, due time), submitted ahead of the due time or at its claim,
-- polled by the daemon that owns the mission's partition without holding
-- a claim, kept until a planned iteration used its answer (a failed plan,
-- write or retry never pays twice), abandoned at the maximum age. The
-- answer is kept without mana-research's providerRaw.
CREATE TABLE mana_ai.research_jobs (
  id           bigserial   PRIMARY KEY,
  user_id      text        NOT NULL,
  mission_id   text        NOT NULL,
  sid          bigint      NOT NULL,
  partition    int         NOT NULL,
  due_at       timestamptz NOT NULL,
  agent_id     text,
  query        text        NOT NULL,
  provider     text        NOT NULL,
  task_id      text,
  status       text        NOT NULL CHECK (status IN ('pending', 'completed', 'failed', 'abandoned', 'used')),
  -- {answer, citations: [{url, title, snippet}]}
  answer       jsonb,
  error        text,
  polls        int         NOT NULL DEFAULT 0,
  submitted_at timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  used_at      timestamptz,
  UNIQUE (user_id, mission_id, due_at)
);
CREATE INDEX research_jobs_pending ON mana_ai.research_jobs (partition) WHERE status = 'pending';
CREATE INDEX research_jobs_mission ON mana_ai.research_jobs (user_id, mission_id, submitted_at DESC);
-- Enabled, not forced: the definer that lists pending jobs across users
-- (pending_research_jobs) reads as the tables' owner, or as mana_ai_definer
-- through its own policy (sql/functions/secure-definers.sql).
ALTER TABLE mana_ai.research_jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY research_jobs_own_rows ON mana_ai.research_jobs
  USING (user_id = current_setting('app.current_user_id', true))
  WITH CHECK (user_id = current_setting('app.current_user_id', true));
REVOKE DELETE, TRUNCATE ON mana_ai.research_jobs FROM PUBLIC;
