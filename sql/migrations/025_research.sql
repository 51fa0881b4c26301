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
