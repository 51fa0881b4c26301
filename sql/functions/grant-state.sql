-- The v2 grant state of a mission (CONTRACT.md section 14; tables in
-- sql/migrations/024_mission_grants.sql), kept by the trigger whenever a
-- mission's folded `grant` changes and replayed by a rebuild from history,
-- so both derive the same rows. It must never fail a mana-sync insert: it
-- runs inside the trigger's subtransaction, and whatever a row holds is
-- either a v2 grant it can read or garbage.
--
-- The folded grant became
--   null, v1, garbage, or a v2 grant bound to another user or mission:
--       every grant seen for the mission is revoked (`ended`);
--   a v2 grant seen before (live or revoked): nothing changes;
--   a v2 grant issued later than every grant seen: it is recorded and the
--       others are revoked (`superseded`);
--   a v2 grant issued no later than one seen (a stale device): it is
--       recorded revoked (`stale`) and the newest live grant keeps serving.

CREATE OR REPLACE FUNCTION mana_ai.note_grant(p_user_id text, p_mission_id text, p_grant jsonb, p_change_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  v_header jsonb;
  v_grant_id text;
  v_issued timestamptz;
  v_newest timestamptz;
BEGIN
  IF jsonb_typeof(p_grant) = 'object' AND p_grant -> 'v' = '2'::jsonb AND jsonb_typeof(p_grant -> 'header') = 'string' THEN
    BEGIN
      v_header := (p_grant ->> 'header')::jsonb;
      IF jsonb_typeof(v_header) = 'object'
         AND v_header ->> 'userId' = p_user_id AND v_header ->> 'missionId' = p_mission_id
         AND (v_header ->> 'grantId') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         AND (v_header ->> 'issuedAt') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' THEN
        v_issued := (v_header ->> 'issuedAt')::timestamptz;
        v_grant_id := v_header ->> 'grantId';
      END IF;
    EXCEPTION WHEN OTHERS THEN
      v_grant_id := NULL;  -- a header that does not parse, or a time that is no instant: garbage
    END;
  END IF;

  IF v_grant_id IS NULL THEN
    INSERT INTO mana_ai.grant_revocations (user_id, mission_id, grant_id, cause, change_id)
    SELECT g.user_id, g.mission_id, g.grant_id, 'ended', p_change_id
      FROM mana_ai.mission_grants g
     WHERE g.user_id = p_user_id AND g.mission_id = p_mission_id  -- every grant seen
    ON CONFLICT DO NOTHING;
    RETURN;
  END IF;

  IF EXISTS (SELECT 1 FROM mana_ai.mission_grants g
              WHERE g.user_id = p_user_id AND g.mission_id = p_mission_id AND g.grant_id = v_grant_id) THEN
    RETURN;
  END IF;
  SELECT max(g.issued_at) INTO v_newest FROM mana_ai.mission_grants g
   WHERE g.user_id = p_user_id AND g.mission_id = p_mission_id;
  INSERT INTO mana_ai.mission_grants (user_id, mission_id, grant_id, issued_at, grant_body, change_id)
  VALUES (p_user_id, p_mission_id, v_grant_id, v_issued, p_grant, p_change_id);
  IF v_newest IS NULL OR v_issued > v_newest THEN
    INSERT INTO mana_ai.grant_revocations (user_id, mission_id, grant_id, cause, change_id)
    SELECT g.user_id, g.mission_id, g.grant_id, 'superseded', p_change_id
      FROM mana_ai.mission_grants g
     WHERE g.user_id = p_user_id AND g.mission_id = p_mission_id AND g.grant_id <> v_grant_id
    ON CONFLICT DO NOTHING;
  ELSE
    INSERT INTO mana_ai.grant_revocations (user_id, mission_id, grant_id, cause, change_id)
    VALUES (p_user_id, p_mission_id, v_grant_id, 'stale', p_change_id)
    ON CONFLICT DO NOTHING;
  END IF;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.note_grant(text, text, jsonb, uuid) FROM PUBLIC;

-- The rebuild's half: folds the mission's rows in log order, as
-- fold_record does, and notes the grant at every row that changed it, so a
-- rebuild from history derives what the trigger derived row by row (the
-- state only grows, and a grant already seen changes nothing, so replaying
-- onto existing rows adds nothing). Missions whose rows never carried a
-- grant cost one index probe.
CREATE OR REPLACE FUNCTION mana_ai.replay_grants(p_user_id text, p_mission_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  r record;
  v_record jsonb;
  v_fts jsonb;
  v_next jsonb;
  v_next_fts jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM ${sync_changes} c
                  WHERE c.app_id = 'ai' AND c.table_name = 'aiMissions' AND c.record_id = p_mission_id
                    AND c.user_id = p_user_id AND jsonb_typeof(c.data) = 'object' AND c.data ? 'grant') THEN
    RETURN;
  END IF;
  FOR r IN
    SELECT c.id, c.op, c.data, mana_ai.field_map_of(to_jsonb(c)) AS field_map, c.created_at
      FROM ${sync_changes} c
     WHERE c.app_id = 'ai' AND c.table_name = 'aiMissions' AND c.record_id = p_mission_id AND c.user_id = p_user_id
     ORDER BY c.created_at, c.id
  LOOP
    BEGIN
      SELECT f.record, f.field_ts INTO STRICT v_next, v_next_fts
        FROM mana_ai.fold_change(v_record, v_fts, p_mission_id, r.op, r.data, r.field_map, r.created_at) AS f;
    EXCEPTION WHEN OTHERS THEN
      CONTINUE; -- a row the trigger would have recorded as an error changes nothing
    END;
    IF coalesce(v_next -> 'grant', 'null') IS DISTINCT FROM coalesce(v_record -> 'grant', 'null') THEN
      PERFORM mana_ai.note_grant(p_user_id, p_mission_id, v_next -> 'grant', r.id);
    END IF;
    v_record := v_next;
    v_fts := v_next_fts;
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.replay_grants(text, text) FROM PUBLIC;
