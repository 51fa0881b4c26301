-- The two triggers on mana-sync's table (${sync_changes}, its qualified
-- name, filled in by migrate), one function for both kinds. The WHEN clause keeps every other app's row
-- out of the trigger entirely: other apps' writes cost one comparison.
-- Never anything but AFTER INSERT: mana-sync's own writes are never changed
-- or refused by us. Replacing a trigger locks the table briefly; migrate
-- does it under lock_timeout and retries (docs/ops.md).

CREATE OR REPLACE TRIGGER mana_ai_mission_snapshot
  AFTER INSERT ON ${sync_changes}
  FOR EACH ROW
  WHEN (NEW.app_id = 'ai' AND NEW.table_name = 'aiMissions')
  EXECUTE FUNCTION mana_ai.on_sync_change();

CREATE OR REPLACE TRIGGER mana_ai_agent_snapshot
  AFTER INSERT ON ${sync_changes}
  FOR EACH ROW
  WHEN (NEW.app_id = 'ai' AND NEW.table_name = 'agents')
  EXECUTE FUNCTION mana_ai.on_sync_change();

-- The first layout's per-kind functions, replaced by on_sync_change for
-- both kinds: dropped once no trigger uses them (this transaction).
DROP FUNCTION IF EXISTS mana_ai.on_sync_agent_change();
DROP FUNCTION IF EXISTS mana_ai.apply_change(uuid, text, text, text, jsonb, jsonb, timestamptz);
DROP FUNCTION IF EXISTS mana_ai.apply_agent_change(uuid, text, text, text, jsonb, jsonb, timestamptz);
