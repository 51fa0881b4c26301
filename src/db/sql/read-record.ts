// Reads one record of any app by folding its rows with the merge rule, in
// the caller's user-scoped transaction (row-level security applies).

import { foldRows, type MergedRecord } from '../../merge/merge.js';
import type { ScopedTx } from '../scoped.js';

export async function readRecord(trx: ScopedTx, q: { userId: string; appId: string; tableName: string; recordId: string }): Promise<MergedRecord | null> {
  const rows = await trx
    .selectFrom('sync_changes')
    .select(['op', 'data', 'field_timestamps', 'created_at'])
    .where('user_id', '=', q.userId)
    .where('app_id', '=', q.appId)
    .where('table_name', '=', q.tableName)
    .where('record_id', '=', q.recordId)
    .orderBy('created_at')
    .orderBy('id')
    .limit(5000)
    .execute();
  return foldRows(
    rows.map((r) => ({ op: r.op, recordId: q.recordId, data: r.data, fieldTimestamps: r.field_timestamps, createdAt: r.created_at.toISOString() })),
  );
}
