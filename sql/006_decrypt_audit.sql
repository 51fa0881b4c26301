-- 006: the decrypt audit (CONTRACT.md section 7). One row per decrypt
-- attempt under a mission grant: ok, failed (with a short reason) or
-- scope-violation. The webapp's "Mission -> data access" tab reads it.
--
-- Append-only in fact, not by convention: BEFORE UPDATE/DELETE and BEFORE
-- TRUNCATE triggers raise for every role, the table owner and superusers
-- included (the runner owns this schema because it runs the migrations, so
-- REVOKE alone would not bind it). Row-level security is forced, so the
-- owner too sees and writes only the rows of the user its transaction is
-- scoped to (app.current_user_id), as mana-sync's table does.

CREATE TABLE mana_ai.decrypt_audit (
  id           bigserial PRIMARY KEY,
  user_id      text        NOT NULL,
  mission_id   text        NOT NULL,
  iteration_id text        NULL,
  table_name   text        NOT NULL,
  record_id    text        NOT NULL,
  status       text        NOT NULL CHECK (status IN ('ok', 'failed', 'scope-violation')),
  reason       text        NULL,
  ts           timestamptz NOT NULL DEFAULT now()
);

-- The audit API reads one user's rows, optionally one mission's, newest first.
CREATE INDEX decrypt_audit_user_mission_id ON mana_ai.decrypt_audit (user_id, mission_id, id DESC);
CREATE INDEX decrypt_audit_user_id ON mana_ai.decrypt_audit (user_id, id DESC);

ALTER TABLE mana_ai.decrypt_audit ENABLE ROW LEVEL SECURITY;
ALTER TABLE mana_ai.decrypt_audit FORCE ROW LEVEL SECURITY;

CREATE POLICY decrypt_audit_own_rows ON mana_ai.decrypt_audit
  USING (user_id = current_setting('app.current_user_id', true))
  WITH CHECK (user_id = current_setting('app.current_user_id', true));

CREATE FUNCTION mana_ai.decrypt_audit_is_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
  RAISE EXCEPTION 'mana_ai.decrypt_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit rows are evidence for the user; they are never changed or removed.';
END;
$$;

CREATE TRIGGER decrypt_audit_no_update_delete
  BEFORE UPDATE OR DELETE ON mana_ai.decrypt_audit
  FOR EACH ROW EXECUTE FUNCTION mana_ai.decrypt_audit_is_append_only();

CREATE TRIGGER decrypt_audit_no_truncate
  BEFORE TRUNCATE ON mana_ai.decrypt_audit
  FOR EACH STATEMENT EXECUTE FUNCTION mana_ai.decrypt_audit_is_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON mana_ai.decrypt_audit FROM PUBLIC;
