// Appends one row to mana-sync's sync_changes inside a user-scoped
// transaction (the caller's). The only write the runner makes outside its
// own schema; the trigger turns it into a snapshot update.

import type { ScopedTx } from '../scoped.js';

export interface ChangeInsert {
  appId: string;
  tableName: string;
  recordId: string;
  userId: string;
  op: 'insert' | 'update' | 'delete';
  data: unknown;
  fieldTimestamps: unknown;
  clientId: string;
  actor?: unknown;
}

export async function insertChange(trx: ScopedTx, row: ChangeInsert): Promise<{ id: string; createdAt: Date }> {
  const result = await trx
    .insertInto('sync_changes')
    .values({
      app_id: row.appId,
      table_name: row.tableName,
      record_id: row.recordId,
      user_id: row.userId,
      op: row.op,
      data: JSON.stringify(row.data),
      field_timestamps: JSON.stringify(row.fieldTimestamps ?? {}),
      client_id: row.clientId,
      actor: row.actor === undefined ? null : JSON.stringify(row.actor),
    })
    .returning(['id', 'created_at'])
    .executeTakeFirstOrThrow();
  return { id: result.id, createdAt: result.created_at };
}
