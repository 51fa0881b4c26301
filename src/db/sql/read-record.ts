// Reads one record of any app by folding all of its rows in SQL with the
// trigger's own fold (mana_ai.fold_record, sql/functions/rebuild.sql), in the caller's
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

/**
 * `spaceIds`: read the record of a shared space instead of the user's own,
 * from the rows of any member carrying one of these spaces; the same ids
 * are set as app.current_user_space_ids for the rest of the transaction,
 * which is what lets row-level security show those rows.
 */
export async function readRecord(
  trx: ScopedTx,
  q: { userId: string; appId: string; tableName: string; recordId: string; spaceIds?: readonly string[] },
): Promise<FoldedRecord | null> {
  if (q.spaceIds) await sql`SELECT set_config('app.current_user_space_ids', ${q.spaceIds.join(',')}, true)`.execute(trx);
  const { rows } = await sql<{ record: JsonObject | null; field_ts: Record<string, string> | null; rows_folded: number }>`
    SELECT record, field_ts, rows_folded
      FROM mana_ai.fold_record(${q.userId}, ${q.appId}, ${q.tableName}, ${q.recordId}, ${q.spaceIds ? [...q.spaceIds] : null}::text[])`.execute(trx);
  const r = rows[0];
  if (!r || r.record === null) return null;
  return { record: r.record, fieldTimestamps: r.field_ts ?? {}, rows: r.rows_folded };
}
