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

-- The v2 grant state is append-only the same way (sql/triggers/grant-state.sql).
CREATE OR REPLACE FUNCTION mana_ai.grant_state_is_append_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  RAISE EXCEPTION 'mana_ai.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'A revoked grant never opens again; grants and revocations are never changed or removed.';
END;
$$;
