-- 017: a plan survives its write-back's failure (issue 18).
--
-- A run whose write-back fails for a reason outside the mission (a lost
-- connection, a lock timeout) gives its claim back and is tried again.
-- The plan the LLM already made is kept with the claim, so the retry, on
-- this daemon or any other, writes that plan instead of asking the LLM a
-- second time for the same (mission, due time); the tokens it cost are
-- charged once, by the write-back that commits. Cleared when written.

ALTER TABLE mana_ai.mission_runs ADD COLUMN pending_plan jsonb;
