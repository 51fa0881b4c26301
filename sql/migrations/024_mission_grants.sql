-- 024: the v2 grants seen per mission, and their revocations (issue 29;
-- CONTRACT.md section 14, "Revocation and stale devices"). The webapp
-- pushes whole mission objects, so a device that has not pulled the newest
-- grant pushes its older one again with any edit and wins the fold. The
-- runner therefore remembers every v2 grant it saw per mission and decides
-- by the header's issuedAt (authenticated by the key table's tag when the
-- grant is opened; the trigger only reads it): a sync-writer can end a
-- grant but never widen or revive one. Written by the trigger
-- (mana_ai.note_grant, sql/functions/grant-state.sql); append-only for every role (sql/triggers/grant-state.sql); the
-- daemon reads them under row-level security.

-- A v2 grant as first seen for the mission: the grant object itself (its
-- header and the wrapped, sealed key material: nothing here opens without
-- the runner's private key), so the newest live grant keeps serving the
-- mission while a stale device's older one is the folded value.
CREATE TABLE mana_ai.mission_grants (
  user_id    text        NOT NULL,
  mission_id text        NOT NULL,
  grant_id   text        NOT NULL,
  issued_at  timestamptz NOT NULL,
  grant_body jsonb       NOT NULL,
  -- the sync_changes row that carried it first
  change_id  uuid,
  seen_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, mission_id, grant_id)
);

-- A grant that never opens again: `ended` (the folded grant became null,
-- v1 or garbage), `superseded` (a grant issued later arrived), `stale` (it
-- arrived issued earlier than one already seen).
CREATE TABLE mana_ai.grant_revocations (
  user_id    text        NOT NULL,
  mission_id text        NOT NULL,
  grant_id   text        NOT NULL,
  cause      text        NOT NULL CHECK (cause IN ('ended', 'superseded', 'stale')),
  change_id  uuid,
  revoked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, mission_id, grant_id)
);

-- Every role sees only the rows of app.current_user_id, except the
-- trigger's definer role, which writes every user's rows (its policy is
-- made with the role, sql/functions/secure-definers.sql). Enabled, not
-- forced: a migrator that is not a superuser owns the trigger function
-- and the tables, and writes them as their owner.
ALTER TABLE mana_ai.mission_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE mana_ai.grant_revocations ENABLE ROW LEVEL SECURITY;
CREATE POLICY mission_grants_own_rows ON mana_ai.mission_grants
  FOR SELECT USING (user_id = current_setting('app.current_user_id', true));
CREATE POLICY grant_revocations_own_rows ON mana_ai.grant_revocations
  FOR SELECT USING (user_id = current_setting('app.current_user_id', true));
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON mana_ai.mission_grants, mana_ai.grant_revocations FROM PUBLIC;
