-- The decrypt audit is append-only for every role (sql/triggers/audit.sql).

CREATE OR REPLACE FUNCTION mana_ai.decrypt_audit_is_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'mana_ai.decrypt_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Audit rows are evidence for the user; they are never changed or removed.';
END;
$$;
