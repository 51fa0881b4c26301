// Repairs snapshots whose fold failed for a transient reason (sql/functions/rebuild.sql):
// one short transaction per recorded error, each a one-mission rebuild
// under the snapshot's row lock. Safe from several daemons at once.

import type pg from 'pg';

export type RepairOutcome = 'repaired' | 'not-pending' | 'failed';

export async function repairSnapshotError(pool: pg.Pool, errorId: number): Promise<RepairOutcome> {
  const { rows } = await pool.query<{ outcome: RepairOutcome }>('SELECT mana_ai.repair_snapshot_error($1) AS outcome', [errorId]);
  return rows[0]!.outcome;
}

/** Ids of the pending transient errors of these partitions, oldest first. */
export async function pendingSnapshotErrors(pool: pg.Pool, q: { partitions: readonly number[]; limit: number }): Promise<number[]> {
  if (q.partitions.length === 0) return [];
  const { rows } = await pool.query<{ id: number }>('SELECT id FROM mana_ai.pending_snapshot_errors($1::int[], $2) AS id', [[...q.partitions], q.limit]);
  return rows.map((r) => Number(r.id));
}
