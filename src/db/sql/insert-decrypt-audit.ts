// Appends one decrypt-audit row, inside the caller's user-scoped
// transaction (row-level security checks the user id). Never carries a
// decrypted value or key material: table, record id, status, short reason.

import type { ScopedTx } from '../scoped.js';

export interface DecryptAuditEntry {
  userId: string;
  missionId: string;
  iterationId: string | null;
  tableName: string;
  recordId: string;
  status: 'ok' | 'failed' | 'scope-violation';
  reason: string | null;
  /** the shared space the record was read from; null (or absent) = the owner's personal record */
  spaceId?: string | null;
}

export async function insertDecryptAudit(trx: ScopedTx, e: DecryptAuditEntry): Promise<void> {
  await trx
    .insertInto('mana_ai.decrypt_audit')
    .values({
      user_id: e.userId,
      mission_id: e.missionId,
      iteration_id: e.iterationId,
      table_name: e.tableName,
      record_id: e.recordId,
      status: e.status,
      reason: e.reason,
      space_id: e.spaceId ?? null,
    })
    .execute();
}
