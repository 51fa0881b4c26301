-- Unparking a mission (the dead-letter, docs/ops.md "Missions parked"):
-- the parked row goes, the snapshot's flag is cleared, the failure streak
-- starts again from now (mana_ai.unparked), and the daemon that owns the
-- mission is told to look at it at its due time at once (a re-arm payload,
-- "r":1, marked "x":"unparked"), instead of a cadence later.
--   unpark_mission  the trigger calls it when the user changes a parked
--                   mission (any field); returns the payload to NOTIFY,
--                   NULL when the mission was not parked;
--   unpark_all      operators: every mission parked since p_since, e.g.
--                   after an outage of something the runner depends on.
--                   Run it as the schema owner; returns how many.

CREATE OR REPLACE FUNCTION mana_ai.unpark_mission(p_key bytea, p_by text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  s mana_ai.mission_snapshots%ROWTYPE;
BEGIN
  DELETE FROM mana_ai.parked p WHERE p.mission_key = p_key;
  UPDATE mana_ai.mission_snapshots x SET parked = false WHERE x.mission_key = p_key RETURNING * INTO s;
  IF s.sid IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO mana_ai.unparked (mission_key, user_id, unparked_at, unparked_by) VALUES (p_key, s.user_id, now(), p_by)
  ON CONFLICT (mission_key) DO UPDATE SET unparked_at = now(), unparked_by = EXCLUDED.unparked_by;
  RETURN json_build_object('s', s.sid, 'v', s.version, 'p', s.partition,
                           'd', mana_ai.schedulable_due_ms(s.state, s.deleted, s.next_run_at),
                           'r', 1, 'x', 'unparked', 'g', s.agent_ref, 'u', s.user_ref)::text;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.unpark_mission(bytea, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mana_ai.unpark_all(p_since timestamptz)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
DECLARE
  k bytea;
  v_payload text;
  n int := 0;
BEGIN
  IF p_since IS NULL THEN
    RAISE EXCEPTION 'unpark_all needs the time since which parked missions are unparked' USING ERRCODE = '22004';
  END IF;
  FOR k IN SELECT p.mission_key FROM mana_ai.parked p WHERE p.parked_at >= p_since ORDER BY p.parked_at LOOP
    v_payload := mana_ai.unpark_mission(k, 'operator');
    IF v_payload IS NOT NULL THEN
      PERFORM pg_notify('mana_ai_missions', v_payload);
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

REVOKE ALL ON FUNCTION mana_ai.unpark_all(timestamptz) FROM PUBLIC;
