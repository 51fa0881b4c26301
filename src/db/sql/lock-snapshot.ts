// The write-back's first statement: locks the mission's snapshot row with
// the trigger's own lock (sql/functions/claim.sql: lock_snapshot_for_write_back) and reads
// it under that lock. Must run first in its transaction, so the lock order
// is the trigger's: snapshot row, then everything else. `waitMs` bounds the
// wait for the row (lock_not_available past it); absent: the session's
// lock_timeout as it is.

import { sql } from 'kysely';
import type { JsonObject } from '../../merge/merge.js';
import type { ScopedTx } from '../scoped.js';

export interface LockedSnapshot {
  record: JsonObject;
  state: string | null;
  nextRunAtMs: number | null;
  deleted: boolean;
  version: number;
}

export async function lockSnapshotForWriteBack(trx: ScopedTx, sid: number, waitMs?: number): Promise<LockedSnapshot | null> {
  const { rows } = await sql<{ record: JsonObject; state: string | null; next_run_at: Date | null; deleted: boolean; version: number }>`
    SELECT record, state, next_run_at, deleted, version FROM mana_ai.lock_snapshot_for_write_back(${sid}, ${waitMs ?? null}::int)`.execute(trx);
  const r = rows[0];
  if (!r) return null;
  return { record: r.record, state: r.state, nextRunAtMs: r.next_run_at ? r.next_run_at.getTime() : null, deleted: r.deleted, version: Number(r.version) };
}
