// The losses the trigger recorded (sql/migrations/023_lost_iterations.sql):
// which are pending for a daemon's partitions, and the rows of one mission
// under the repair's lock. Never writes sync_changes (the repair does,
// src/write-back/restore-iterations.ts).

import { sql } from 'kysely';
import type pg from 'pg';
import type { ScopedTx } from '../scoped.js';

export interface LossRow {
  id: number;
  userId: string;
  missionId: string;
  missionKey: Buffer;
  restored: boolean;
}

export async function readLoss(pool: pg.Pool, id: number): Promise<LossRow | null> {
  const { rows } = await pool.query<{ id: string; user_id: string; mission_id: string; mission_key: Buffer; restored_at: Date | null }>(
    'SELECT id, user_id, mission_id, mission_key, restored_at FROM mana_ai.lost_iterations WHERE id = $1',
    [id],
  );
  const r = rows[0];
  return r ? { id: Number(r.id), userId: r.user_id, missionId: r.mission_id, missionKey: r.mission_key, restored: r.restored_at !== null } : null;
}

/** Pending losses of these partitions, oldest first (a restart or a partition move between a loss and its repair). */
export async function pendingLosses(pool: pg.Pool, q: { partitions: readonly number[]; limit: number }): Promise<number[]> {
  if (q.partitions.length === 0) return [];
  const { rows } = await pool.query<{ id: string }>(
    'SELECT id FROM mana_ai.lost_iterations WHERE restored_at IS NULL AND partition = ANY($1::int[]) ORDER BY id LIMIT $2',
    [[...q.partitions], q.limit],
  );
  return rows.map((r) => Number(r.id));
}

export interface LockedForRepair {
  sid: number;
  record: Record<string, unknown>;
  fieldTs: Record<string, unknown>;
  deleted: boolean;
}

/** The snapshot's row lock (the trigger's and the write-back's) and the snapshot under it; null when it is gone. */
export async function lockSnapshotForRepair(trx: ScopedTx, missionKey: Buffer): Promise<LockedForRepair | null> {
  const { rows } = await sql<{ sid: string; record: Record<string, unknown>; field_ts: Record<string, unknown> | null; deleted: boolean }>`
    SELECT sid, record, field_ts, deleted FROM mana_ai.lock_snapshot_for_repair(${missionKey})`.execute(trx);
  const r = rows[0];
  return r ? { sid: Number(r.sid), record: r.record, fieldTs: r.field_ts ?? {}, deleted: r.deleted } : null;
}

/** The mission's pending losses, locked (a second repairer waits, then finds them settled), oldest first. */
export async function lockPendingLosses(trx: ScopedTx, missionKey: Buffer): Promise<{ id: number; iterations: unknown }[]> {
  const { rows } = await sql<{ id: string; iterations: unknown }>`
    SELECT id, iterations FROM mana_ai.lost_iterations
     WHERE mission_key = ${missionKey} AND restored_at IS NULL ORDER BY id FOR UPDATE`.execute(trx);
  return rows.map((r) => ({ id: Number(r.id), iterations: r.iterations }));
}

export async function settleLosses(trx: ScopedTx, ids: readonly number[], outcome: 'restored' | 'present' | 'deleted', repairChangeId: string | null = null): Promise<void> {
  if (ids.length === 0) return;
  await sql`UPDATE mana_ai.lost_iterations SET restored_at = now(), outcome = ${outcome}, repair_change_id = ${repairChangeId}::uuid
             WHERE id = ANY(${[...ids]}::bigint[])`.execute(trx);
}
