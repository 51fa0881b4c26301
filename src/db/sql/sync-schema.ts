// Which of mana-sync's two schemas the database has (CONTRACT.md sections
// 2 and 12), from mana_ai.sync_schema() (sql/functions/sync-schema.sql):
// the per-field map's column and whether origin and space_id exist. Read
// from the catalog every time it matters (the write-back, /health,
// inspect), never configured, so a deployment that renames the column is
// followed without a restart. Never writes.

import { sql } from 'kysely';
import type pg from 'pg';
import type { ScopedTx } from '../scoped.js';

export interface SyncSchema {
  /** mana-sync's table, qualified and quoted (mana_ai.sync_table: the recorded one) */
  table: string;
  /** its schema and name, unquoted */
  schema: string;
  name: string;
  /** the per-field timestamp map: the seed's name or today's */
  fieldMap: 'field_timestamps' | 'field_meta';
  origin: boolean;
  spaceId: boolean;
}

/** `seed` (section 2) or `head` (section 12), for people: health, inspect, logs. */
export function schemaName(s: SyncSchema): 'seed' | 'head' {
  return s.fieldMap === 'field_meta' || s.origin || s.spaceId ? 'head' : 'seed';
}

export function parseSyncSchema(raw: unknown): SyncSchema | null {
  if (!raw || typeof raw !== 'object') return null;
  const r = raw as Record<string, unknown>;
  if (typeof r['table'] !== 'string' || typeof r['schema'] !== 'string' || typeof r['name'] !== 'string') return null;
  if (r['fieldMap'] !== 'field_timestamps' && r['fieldMap'] !== 'field_meta') return null;
  return { table: r['table'], schema: r['schema'], name: r['name'], fieldMap: r['fieldMap'], origin: r['origin'] === true, spaceId: r['spaceId'] === true };
}

/** Null when mana-sync's table is not recorded (mana_ai.sync_table) or has neither map column. */
export async function readSyncSchema(q: pg.Pool | pg.PoolClient): Promise<SyncSchema | null> {
  const { rows } = await q.query<{ s: unknown }>('SELECT mana_ai.sync_schema() AS s');
  return parseSyncSchema(rows[0]?.s);
}

/**
 * The schema as it stands for the rest of this transaction: ROW EXCLUSIVE
 * on the recorded table (what the insert takes anyway) is held first, in
 * the same round trip (mana_ai.lock_sync_schema), so a rename of the column
 * (ACCESS EXCLUSIVE) waits until this transaction ends instead of landing
 * between this read and the insert.
 */
export async function lockSyncSchema(trx: ScopedTx): Promise<SyncSchema> {
  const { rows } = await sql<{ s: unknown }>`SELECT mana_ai.lock_sync_schema() AS s`.execute(trx);
  const s = parseSyncSchema(rows[0]?.s);
  if (!s) throw Object.assign(new Error("mana-sync's table is not recorded in mana_ai.sync_table or has neither field_timestamps nor field_meta"), { code: '42703' });
  return s;
}
