-- Iterations a write erased (issue 28): what the trigger compares and the
-- repair's lock. The webapp treats `iterations` as append-only (CONTRACT.md
-- section 13), so an id that was in the folded array before a write and is
-- not after it was lost by a stale device's whole-array push, never removed
-- on purpose.

-- The iterations of p_before whose id p_after lacks, in their order, as
-- they stood; NULL when none (or p_before is no array). Ids compare as JSON
-- values; an element without an id is nobody's iteration and never "lost".
-- Pure; on the trigger's path only for writes that carry `iterations`.
CREATE OR REPLACE FUNCTION mana_ai.lost_iterations(p_before jsonb, p_after jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT jsonb_agg(b.it ORDER BY b.ord)
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_before) = 'array' THEN p_before ELSE '[]'::jsonb END) WITH ORDINALITY AS b(it, ord)
   WHERE jsonb_typeof(b.it) = 'object' AND b.it ? 'id'
     AND NOT EXISTS (SELECT 1
                       FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_after) = 'array' THEN p_after ELSE '[]'::jsonb END) AS a(it)
                      WHERE jsonb_typeof(a.it) = 'object' AND a.it -> 'id' = b.it -> 'id')
$$;

-- The repair's first statement: the snapshot's row lock (the same, in the
-- same order, as the trigger's and the write-back's) and the snapshot as it
-- stands under it, with its per-field timestamps. SECURITY DEFINER like
-- lock_snapshot_for_write_back; execution granted to the runtime role alone.
CREATE OR REPLACE FUNCTION mana_ai.lock_snapshot_for_repair(p_mission_key bytea)
RETURNS TABLE (sid bigint, record jsonb, field_ts jsonb, deleted boolean)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, mana_ai, pg_temp
AS $$
  SELECT s.sid, s.record, s.field_ts, s.deleted
    FROM mana_ai.mission_snapshots s
   WHERE s.mission_key = p_mission_key
     FOR UPDATE
$$;

REVOKE ALL ON FUNCTION mana_ai.lock_snapshot_for_repair(bytea) FROM PUBLIC;
