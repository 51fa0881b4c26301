-- The v2 grant state is append-only for every role, its owner included
-- (sql/functions/grant-state.sql): a revoked grant never opens again.

CREATE OR REPLACE TRIGGER mission_grants_no_update_delete
  BEFORE UPDATE OR DELETE ON mana_ai.mission_grants
  FOR EACH ROW EXECUTE FUNCTION mana_ai.grant_state_is_append_only();

CREATE OR REPLACE TRIGGER mission_grants_no_truncate
  BEFORE TRUNCATE ON mana_ai.mission_grants
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.grant_state_is_append_only();

CREATE OR REPLACE TRIGGER grant_revocations_no_update_delete
  BEFORE UPDATE OR DELETE ON mana_ai.grant_revocations
  FOR EACH ROW EXECUTE FUNCTION mana_ai.grant_state_is_append_only();

CREATE OR REPLACE TRIGGER grant_revocations_no_truncate
  BEFORE TRUNCATE ON mana_ai.grant_revocations
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.grant_state_is_append_only();
