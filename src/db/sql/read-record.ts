// Reads one record of any app by folding the rows of its one scope in SQL
// with the trigger's own fold (mana_ai.fold_record, sql/functions/rebuild.sql),
// in the caller's user-scoped transaction (row-level security applies).
// However many rows the record has, the newest value wins and only the
// record crosses the wire. Which scope is the caller's decision
// (src/planner/resolvers/record-scope.ts); this file never widens it.

import { sql } from 'kysely';
import type { JsonObject } from '../../merge/merge.js';
import type { ScopedTx } from '../scoped.js';

export interface FoldedRecord {
  record: JsonObject;
  fieldTimestamps: Record<string, string>;
  rows: number;
}

/**
 * The rows that stand for a record: `owner`, every row of the user (what
 * the trigger folds for missions and agents); `personal`, the user's rows
 * that name no space; `space`, the rows of one space by its verified writers.
 */
export type RecordScope =
  | { kind: 'owner' }
  | { kind: 'personal' }
  | { kind: 'space'; spaceId: string; writers: readonly string[] };

/** Lets row-level security show the rows of the owner's spaces for the rest of the transaction. */
export async function showSpaces(trx: ScopedTx, spaceIds: readonly string[]): Promise<void> {
  await sql`SELECT set_config('app.current_user_space_ids', ${spaceIds.join(',')}, true)`.execute(trx);
}

export async function readRecord(
  trx: ScopedTx,
  q: { userId: string; appId: string; tableName: string; recordId: string; scope?: RecordScope },
): Promise<FoldedRecord | null> {
  const scope = q.scope ?? { kind: 'owner' };
  const { rows } = await sql<{ record: JsonObject | null; field_ts: Record<string, string> | null; rows_folded: number }>`
    SELECT record, field_ts, rows_folded
      FROM mana_ai.fold_record(${q.userId}, ${q.appId}, ${q.tableName}, ${q.recordId}, ${scope.kind},
                               ${scope.kind === 'space' ? scope.spaceId : null}::text,
                               ${scope.kind === 'space' ? [...scope.writers] : null}::text[])`.execute(trx);
  const r = rows[0];
  if (!r || r.record === null) return null;
  return { record: r.record, fieldTimestamps: r.field_ts ?? {}, rows: r.rows_folded };
}

/** Who wrote rows of the record and in which space (null: none), as far as row-level security shows. */
export async function recordWriters(trx: ScopedTx, q: { appId: string; tableName: string; recordId: string }): Promise<{ spaceId: string | null; userId: string }[]> {
  const { rows } = await sql<{ space_id: string | null; user_id: string }>`
    SELECT space_id, user_id FROM mana_ai.record_writers(${q.appId}, ${q.tableName}, ${q.recordId})`.execute(trx);
  return rows.map((r) => ({ spaceId: r.space_id, userId: r.user_id }));
}
