-- 019: every run remembers the prompt it was planned with (issue 19).
--
-- prompt_version is a short hash of the prompt template, the tool catalog
-- of the webapp generation served and the planner mode (src/planner/
-- prompt.ts); the iteration written back carries the same value as
-- `promptVersion`, so a plan can be traced to the prompt that made it.

ALTER TABLE mana_ai.mission_runs ADD COLUMN prompt_version text;
