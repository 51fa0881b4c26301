-- Pruning rides on the inserts (sql/functions/retention.sql): once per
-- statement, never per row, never on a timer; one function for the three.

CREATE OR REPLACE TRIGGER mission_runs_prune
  AFTER INSERT ON mana_ai.mission_runs
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER snapshot_errors_prune
  AFTER INSERT ON mana_ai.snapshot_errors
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER lost_iterations_prune
  AFTER INSERT ON mana_ai.lost_iterations
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

CREATE OR REPLACE TRIGGER token_usage_prune
  AFTER INSERT ON mana_ai.token_usage
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_old_rows();

-- The first layout's one function per table, dropped once no trigger uses them.
DROP FUNCTION IF EXISTS mana_ai.prune_mission_runs();
DROP FUNCTION IF EXISTS mana_ai.prune_snapshot_errors();
DROP FUNCTION IF EXISTS mana_ai.prune_token_usage();
