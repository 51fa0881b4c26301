-- The decrypt audit is evidence for the user: append-only for every role,
-- the table owner and superusers included (REVOKE alone would not bind the
-- owner, which runs the migrations).

CREATE OR REPLACE TRIGGER decrypt_audit_no_update_delete
  BEFORE UPDATE OR DELETE ON mana_ai.decrypt_audit
  FOR EACH ROW EXECUTE FUNCTION mana_ai.decrypt_audit_is_append_only();

CREATE OR REPLACE TRIGGER decrypt_audit_no_truncate
  BEFORE TRUNCATE ON mana_ai.decrypt_audit
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.decrypt_audit_is_append_only();
