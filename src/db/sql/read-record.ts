// Reads one record of any app by folding all of its rows in SQL with the
// trigger's own fold (mana_ai.fold_record, sql/functions/snapshot-store.sql), in the caller's
// user-scoped transaction (row-level security applies). However many rows
// the record has, the newest value wins and only the record crosses the
// wire.

import { sql } from 'kysely';
import type { JsonObject } from '../../merge/merge.js';
import type { ScopedTx } from '../scoped.js';

export interface FoldedRecord {
  record: JsonObject;
  fieldTimestamps: Record<string, string>;
  rows: number;
}

export async function readRecord(trx: ScopedTx, q: { userId: string; appId: string; tableName: string; recordId: string }): Promise<FoldedRecord | null> {
  const { rows } = await sql<{ record: JsonObject | null; field_ts: Record<string, string> | null; rows_folded: number }>`
    SELECT record, field_ts, rows_folded FROM mana_ai.fold_record(${q.userId}, ${q.appId}, ${q.tableName}, ${q.recordId})`.execute(trx);
  const r = rows[0];
  if (!r || r.record === null) return null;
  return { record: r.record, fieldTimestamps: r.field_ts ?? {}, rows: r.rows_folded };
}
