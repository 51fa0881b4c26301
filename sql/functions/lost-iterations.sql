-- Iterations a write erased (issue 28): what the trigger compares and the
-- repair's lock. The webapp treats `iterations` as append-only (CONTRACT.md
-- section 13), so an id that was in the folded array before a write and is
-- not after it was lost by a stale device's whole-array push, never removed
-- on purpose.

-- The iterations of p_before, then of p_incoming (the write's own array),
-- whose id p_after lacks: each id once (as it stood before, when it was
-- there), in that order; NULL when none. An incoming iteration can be lost
-- too: a device's append whose whole array lost the merge to a newer one
-- (a repair or another device's push that committed first) never reaches
-- the folded array. Ids compare as JSON values; an element without an id
-- is nobody's iteration and never "lost". Pure; on the trigger's path only
-- for writes that carry `iterations` or change the folded array.
DROP FUNCTION IF EXISTS mana_ai.lost_iterations(jsonb, jsonb);
CREATE OR REPLACE FUNCTION mana_ai.lost_iterations(p_before jsonb, p_after jsonb, p_incoming jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT jsonb_agg(x.it ORDER BY x.src, x.ord)
    FROM (SELECT DISTINCT ON (c.it -> 'id') c.it, c.src, c.ord
            FROM (SELECT b.it, 1 AS src, b.ord
                    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_before) = 'array' THEN p_before ELSE '[]'::jsonb END) WITH ORDINALITY AS b(it, ord)
                  UNION ALL
                  SELECT i.it, 2, i.ord
                    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_incoming) = 'array' THEN p_incoming ELSE '[]'::jsonb END) WITH ORDINALITY AS i(it, ord)) c
           WHERE jsonb_typeof(c.it) = 'object' AND c.it ? 'id'
             AND NOT EXISTS (SELECT 1
                               FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_after) = 'array' THEN p_after ELSE '[]'::jsonb END) AS a(it)
                              WHERE jsonb_typeof(a.it) = 'object' AND a.it -> 'id' = c.it -> 'id')
           ORDER BY c.it -> 'id', c.src, c.ord) x
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
