-- Pruning rides on the inserts (sql/functions/retention.sql): once per
-- statement, never per row, never on a timer; one function for the three.
-- mission_runs and token_usage take an insert with every claim and every
-- charge, on the path from a due time to the LLM (issue 30): there one
-- insert statement in PRUNE_ONE_IN (8) prunes, chosen at random by the
-- trigger's WHEN, and takes up to 8 × 100 rows, so the pruning keeps the
-- pace of one insert in one (sql/functions/retention.sql) at an eighth of
-- the calls. The two rare tables prune on every insert.

CREATE OR REPLACE TRIGGER mission_runs_prune
  AFTER INSERT ON mana_ai.mission_runs
  FOR EACH STATEMENT WHEN (random() < 0.125) EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER snapshot_errors_prune
  AFTER INSERT ON mana_ai.snapshot_errors
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER lost_iterations_prune
  AFTER INSERT ON mana_ai.lost_iterations
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER token_usage_prune
  AFTER INSERT ON mana_ai.token_usage
  FOR EACH STATEMENT WHEN (random() < 0.125) EXECUTE FUNCTION mana_ai.prune_old_rows();

-- The first layout's one function per table, dropped once no trigger uses them.
DROP FUNCTION IF EXISTS mana_ai.prune_mission_runs();
DROP FUNCTION IF EXISTS mana_ai.prune_snapshot_errors();
DROP FUNCTION IF EXISTS mana_ai.prune_token_usage();
