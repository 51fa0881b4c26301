-- The merge rule (CONTRACT.md section 3) and what is derived from a merged
-- record, as pure functions: no table, no lock, no NOTIFY. fold_change
-- mirrors src/merge/merge.ts and the derivations mirror src/merge/derive.ts;
-- test/trigger-property.test.ts holds them equal. Missions and agents share
-- every function here. Never reads or writes a table.

-- A JSON value as a timestamp string, or NULL when it is not a string.
-- Timestamps are compared as text (ISO-8601 UTC orders like time).
CREATE OR REPLACE FUNCTION mana_ai.ts_text(p_value jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE WHEN jsonb_typeof(p_value) = 'string' THEN p_value #>> '{}' END
$$;

-- ISO-8601 text to timestamptz, NULL for anything else. Accepts
-- YYYY-MM-DDTHH:MM:SS[.f{1,3}](Z|+HH:MM|-HH:MM), the same set as
-- parseIsoStrict in src/merge/iso.ts. Pure checks, no exception block (a
-- subtransaction per mission row would cost more than the whole fold) and
-- no regular expression: the regex engine cost ~0.7 ms a call for the first
-- ~20,000 calls of every session (docs/performance.md), the bulk trigger's
-- largest cost. Digits are masked to '#' and the shape compared as text.
CREATE OR REPLACE FUNCTION mana_ai.parse_iso(p_text text)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  n int;
  shape text;
  y int; mo int; d int; hh int; mi int; ss int; oh int; om int;
  v_tz int;        -- length of the zone: 1 for Z, 6 for +HH:MM
  v_offset int := 0;
  v_frac int;      -- length of .f{1,3}, or 0
  month_days int[] := ARRAY[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
BEGIN
  n := length(p_text);
  IF n IS NULL OR n < 20 OR n > 29 OR strpos(p_text, '#') > 0 THEN
    RETURN NULL;
  END IF;
  shape := translate(p_text, '0123456789', '##########');
  IF left(shape, 19) <> '####-##-##T##:##:##'
     OR substr(shape, 20) NOT IN ('Z', '.#Z', '.##Z', '.###Z',
                                  '+##:##', '.#+##:##', '.##+##:##', '.###+##:##',
                                  '-##:##', '.#-##:##', '.##-##:##', '.###-##:##') THEN
    RETURN NULL;
  END IF;
  y := substr(p_text, 1, 4)::int; mo := substr(p_text, 6, 2)::int; d := substr(p_text, 9, 2)::int;
  hh := substr(p_text, 12, 2)::int; mi := substr(p_text, 15, 2)::int; ss := substr(p_text, 18, 2)::int;
  IF y < 1 OR mo < 1 OR mo > 12 OR d < 1 OR hh > 23 OR mi > 59 OR ss > 59 THEN
    RETURN NULL;
  END IF;
  IF mo = 2 AND (y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0)) THEN
    IF d > 29 THEN RETURN NULL; END IF;
  ELSIF d > month_days[mo] THEN
    RETURN NULL;
  END IF;
  v_tz := CASE WHEN right(p_text, 1) = 'Z' THEN 1 ELSE 6 END;
  IF v_tz = 6 THEN
    oh := substr(p_text, n - 4, 2)::int; om := substr(p_text, n - 1, 2)::int;
    IF oh > 23 OR om > 59 THEN RETURN NULL; END IF;
    v_offset := (oh * 60 + om) * CASE WHEN substr(p_text, n - 5, 1) = '-' THEN -1 ELSE 1 END;
  END IF;
  v_frac := n - 19 - v_tz;
  -- Computed, not cast: Postgres's input refuses offsets beyond 15:59,
  -- which the contract's parser accepts.
  RETURN make_timestamptz(y, mo, d, hh, mi,
                          ss + CASE WHEN v_frac > 0 THEN ('0' || substr(p_text, 20, v_frac))::numeric ELSE 0 END,
                          'UTC')
         - make_interval(mins => v_offset);
END
$$;

CREATE OR REPLACE FUNCTION mana_ai.strip_bookkeeping(p_data jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT p_data - ARRAY['id', '__fieldTimestamps', '__fieldActors', '__lastActor']
$$;

-- The merge rule as a pure function: (record, field timestamps) + one row
-- -> (record, field timestamps). record NULL in = unknown, out = removed.
-- Decisions the contract leaves open (docs/merge-rule.md):
--  * data that is neither an object nor null raises (the row is recorded
--    in snapshot_errors and changes nothing); JSON null counts as no data;
--  * a timestamp that is not a JSON string is no timestamp;
--  * the fallback for a field without a stored timestamp is the record's
--    updatedAt as it stood before the row, so the result does not depend on
--    the order of keys inside one row (v0.4 only);
--  * a delete whose deletedAt is not a string raises (never a hard delete
--    by accident).
-- The rule is the webapp's the deployment serves (the merge_rule placeholder, filled in
-- by migrate from mana_ai.settings; `npm run migrate -- --webapp head`):
--  v0.4  CONTRACT.md section 3;
--  head  section 12: a field without a stored timestamp compares as the
--        empty string (no updatedAt fallback), a soft delete sets only
--        deletedAt, and an insert row's own per-field timestamps (mana-auth's
--        bootstrap rows) are used where given, the record time elsewhere.
-- src/merge/merge.ts folds by the same rule; the property test runs both.
CREATE OR REPLACE FUNCTION mana_ai.fold_change(
  p_record jsonb,
  p_field_ts jsonb,
  p_record_id text,
  p_op text,
  p_data jsonb,
  p_field_timestamps jsonb,
  p_created_at timestamptz,
  OUT record jsonb,
  OUT field_ts jsonb)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  v_data jsonb := p_data;
  v_fields jsonb;
  v_fts jsonb;
  v_rt text;
  v_del text;
  v_stored text;
  v_base_updated text;
  v_own jsonb;
  v_head constant boolean := '${merge_rule}' = 'head';
BEGIN
  record := p_record;
  field_ts := CASE WHEN p_record IS NULL THEN NULL ELSE coalesce(p_field_ts, '{}'::jsonb) END;

  IF jsonb_typeof(v_data) = 'null' THEN
    v_data := NULL;
  END IF;
  IF v_data IS NOT NULL AND jsonb_typeof(v_data) <> 'object' THEN
    RAISE EXCEPTION 'data is a JSON %, not an object', jsonb_typeof(v_data)
      USING ERRCODE = '22023';
  END IF;

  IF p_op = 'delete' THEN
    IF v_data IS NULL OR NOT (v_data ? 'deletedAt') THEN
      record := NULL;   -- hard delete
      field_ts := NULL;
      RETURN;
    END IF;
    v_del := mana_ai.ts_text(v_data -> 'deletedAt');
    IF v_del IS NULL THEN
      RAISE EXCEPTION 'delete with deletedAt of JSON type %, expected a string', jsonb_typeof(v_data -> 'deletedAt')
        USING ERRCODE = '22023';
    END IF;
    IF record IS NULL THEN
      RETURN;           -- soft delete of an unknown record: nothing happens
    END IF;
    v_stored := coalesce(mana_ai.ts_text(field_ts -> 'deletedAt'), mana_ai.ts_text(record -> 'deletedAt'), '');
    IF v_del COLLATE "C" >= v_stored COLLATE "C" THEN
      IF v_head THEN
        record := record || jsonb_build_object('deletedAt', v_del);
        field_ts := field_ts || jsonb_build_object('deletedAt', v_del);
      ELSE
        record := record || jsonb_build_object('deletedAt', v_del, 'updatedAt', v_del);
        field_ts := field_ts || jsonb_build_object('deletedAt', v_del, 'updatedAt', v_del);
      END IF;
    END IF;
    RETURN;
  END IF;

  v_fields := mana_ai.strip_bookkeeping(coalesce(v_data, '{}'::jsonb));
  v_base_updated := CASE WHEN v_head THEN '' ELSE coalesce(mana_ai.ts_text(record -> 'updatedAt'), '') END;

  -- One query per row (each SELECT in PL/pgSQL is a statement of its own,
  -- the fold's main cost): the fields that win and their timestamps. A
  -- field wins when its timestamp is at least the one stored for it (else
  -- the record's updatedAt before this row), compared as text; on an
  -- unknown record every field of the row wins. Keys are unique, so the
  -- order of fields inside one row does not matter.
  IF p_op = 'insert' THEN
    v_rt := coalesce(
      mana_ai.ts_text(v_fields -> 'updatedAt'),
      mana_ai.ts_text(v_fields -> 'createdAt'),
      to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
    v_own := CASE WHEN v_head AND jsonb_typeof(p_field_timestamps) = 'object' THEN p_field_timestamps ELSE '{}'::jsonb END;
    IF record IS NULL THEN
      -- the common insert: a new record, every field wins
      record := v_fields || jsonb_build_object('id', p_record_id);
      SELECT coalesce(jsonb_object_agg(k, coalesce(mana_ai.ts_text(v_own -> k), v_rt)), '{}'::jsonb) INTO field_ts
        FROM jsonb_object_keys(v_fields) AS k;
      RETURN;
    END IF;
    SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb), coalesce(jsonb_object_agg(e.key, t.ts), '{}'::jsonb)
      INTO v_fields, v_fts
      FROM jsonb_each(v_fields) AS e
      CROSS JOIN LATERAL (SELECT coalesce(mana_ai.ts_text(v_own -> e.key), v_rt) AS ts) t
     WHERE t.ts COLLATE "C" >= coalesce(mana_ai.ts_text(field_ts -> e.key), v_base_updated) COLLATE "C";
  ELSIF p_op = 'update' THEN
    IF jsonb_typeof(p_field_timestamps) = 'object' THEN
      SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb), coalesce(jsonb_object_agg(e.key, p_field_timestamps -> e.key), '{}'::jsonb)
        INTO v_fields, v_fts
        FROM jsonb_each(v_fields) AS e
       WHERE jsonb_typeof(p_field_timestamps -> e.key) = 'string'
         AND (record IS NULL
              OR (p_field_timestamps ->> e.key) COLLATE "C" >= coalesce(mana_ai.ts_text(field_ts -> e.key), v_base_updated) COLLATE "C");
    ELSE
      v_fields := '{}'::jsonb;
      v_fts := '{}'::jsonb;
    END IF;
  ELSE
    RAISE EXCEPTION 'unknown op %', p_op USING ERRCODE = '22023';
  END IF;

  IF record IS NULL THEN
    record := v_fields || jsonb_build_object('id', p_record_id);
    field_ts := v_fts;
  ELSE
    record := record || v_fields;
    field_ts := field_ts || v_fts;
  END IF;
END
$$;

-- Gone unless deletedAt is absent, null, "" or false (src/merge/derive.ts):
-- the one definition for agents and, from here on, missions.
CREATE OR REPLACE FUNCTION mana_ai.record_deleted(p_record jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(p_record -> 'deletedAt', 'null'::jsonb) NOT IN ('null'::jsonb, '""'::jsonb, 'false'::jsonb)
$$;

CREATE OR REPLACE FUNCTION mana_ai.agent_id_of(p_record jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT nullif(mana_ai.ts_text(p_record -> 'agentId'), '')
$$;

-- The schedule a notification carries: epoch ms of the next run, or NULL
-- when the mission must not be scheduled at all. PL/pgSQL for the reason
-- mission_payload is (sql/functions/notify.sql): extract() on a
-- timestamptz is only stable, so the SQL body was never inlined.
CREATE OR REPLACE FUNCTION mana_ai.schedulable_due_ms(p_state text, p_deleted boolean, p_next_run_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
  RETURN CASE WHEN p_state = 'active' AND NOT p_deleted AND p_next_run_at IS NOT NULL
              THEN floor(extract(epoch FROM p_next_run_at) * 1000)::bigint END;
END
$$;

-- The gate fields of an agent record. Decisions the contract leaves open
-- (docs/agents.md): a deleted record is 'deleted' whatever its state; state
-- absent or null is 'active' (the webapp's default); an unknown state is
-- 'paused' (never run what we do not understand); maxConcurrentMissions
-- that is not a number, or below 1, is 1, above 1000 is 1000;
-- maxTokensPerDay that is not a number is no budget, a negative one is 0.
CREATE OR REPLACE FUNCTION mana_ai.agent_gate_of(
  p_record jsonb,
  OUT gate text,
  OUT max_concurrent int,
  OUT max_tokens_per_day bigint,
  OUT policy jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT
    CASE WHEN mana_ai.record_deleted(p_record) THEN 'deleted'
         WHEN coalesce(p_record -> 'state', 'null'::jsonb) IN ('null'::jsonb, '"active"'::jsonb) THEN 'active'
         WHEN p_record -> 'state' = '"archived"'::jsonb THEN 'archived'
         ELSE 'paused' END,
    CASE WHEN jsonb_typeof(p_record -> 'maxConcurrentMissions') = 'number'
         THEN least(greatest(floor((p_record ->> 'maxConcurrentMissions')::numeric), 1), 1000)::int
         ELSE 1 END,
    CASE WHEN jsonb_typeof(p_record -> 'maxTokensPerDay') = 'number'
         THEN least(greatest(floor((p_record ->> 'maxTokensPerDay')::numeric), 0), 1e15)::bigint END,
    CASE WHEN jsonb_typeof(p_record -> 'policy') = 'object' THEN p_record -> 'policy' END
$$;
