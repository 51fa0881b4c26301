// Appends one row to mana-sync's sync_changes inside a user-scoped
// transaction (the caller's). The only write the runner makes outside its
// own schema; the trigger turns it into a snapshot update. The columns are
// the table's own (sync-schema.ts): the per-field map under its name,
// origin 'agent' and the mission's space where those columns exist.

import type { ScopedTx } from '../scoped.js';
import { lockSyncSchema } from './sync-schema.js';

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
  /** the record's shared space (its spaceId), written where the column exists */
  spaceId?: string | null;
}

export async function insertChange(trx: ScopedTx, row: ChangeInsert): Promise<{ id: string; createdAt: Date }> {
  const schema = await lockSyncSchema(trx);
  const values: Record<string, unknown> = {
    app_id: row.appId,
    table_name: row.tableName,
    record_id: row.recordId,
    user_id: row.userId,
    op: row.op,
    data: JSON.stringify(row.data),
    [schema.fieldMap]: JSON.stringify(row.fieldTimestamps ?? {}),
    client_id: row.clientId,
    actor: row.actor === undefined ? null : JSON.stringify(row.actor),
  };
  // upstream's runner marks its rows so; the seed's table has no such column
  if (schema.origin) values['origin'] = 'agent';
  // the other members of a shared space receive the iteration
  if (schema.spaceId && typeof row.spaceId === 'string' && row.spaceId !== '') values['space_id'] = row.spaceId;
  // the recorded table by its qualified name, never one a search_path finds
  const result = await trx
    .withSchema(schema.schema)
    .insertInto(schema.name as 'sync_changes')
    .values(values as never)
    .returning(['id', 'created_at'])
    .executeTakeFirstOrThrow();
  return { id: result.id, createdAt: result.created_at };
}
