-- Pruning rides on the inserts (sql/functions/retention.sql): once per
-- statement, never per row, never on a timer.

CREATE OR REPLACE TRIGGER mission_runs_prune
  AFTER INSERT ON mana_ai.mission_runs
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_mission_runs();

CREATE OR REPLACE TRIGGER snapshot_errors_prune
  AFTER INSERT ON mana_ai.snapshot_errors
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_snapshot_errors();

CREATE OR REPLACE TRIGGER token_usage_prune
  AFTER INSERT ON mana_ai.token_usage
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.prune_token_usage();
