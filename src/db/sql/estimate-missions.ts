// The planner's estimate of how many mission snapshots there are (what
// ANALYZE and autovacuum last saw), free to read. The reactor sizes its
// mission table and wheel from it before a load; a wrong estimate costs
// only a later growth step. -1 when the table was never analyzed.

import type pg from 'pg';

export async function estimateMissions(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`SELECT reltuples::bigint AS n FROM pg_class WHERE oid = 'mana_ai.mission_snapshots'::regclass`);
  return rows[0]?.n ?? -1;
}
