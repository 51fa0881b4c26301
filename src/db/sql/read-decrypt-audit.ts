// Reads one user's decrypt-audit rows, newest first, inside a transaction
// scoped to that user (row-level security), with the user filter spelled
// out as well so a role that bypasses RLS still reads only that user.

import { withUserScope } from '../scoped.js';
import type { Db } from '../pool.js';

export const AUDIT_LIMIT_DEFAULT = 200;
export const AUDIT_LIMIT_MAX = 1000;

export interface AuditRow {
  id: number;
  missionId: string;
  iterationId: string | null;
  tableName: string;
  recordId: string;
  status: 'ok' | 'failed' | 'scope-violation';
  reason: string | null;
  ts: string;
}

export async function readDecryptAudit(db: Db, q: { userId: string; missionId?: string | undefined; limit: number }): Promise<AuditRow[]> {
  const limit = Math.min(Math.max(1, Math.trunc(q.limit)), AUDIT_LIMIT_MAX);
  return withUserScope(db, q.userId, async (trx) => {
    let query = trx
      .selectFrom('mana_ai.decrypt_audit')
      .select(['id', 'mission_id', 'iteration_id', 'table_name', 'record_id', 'status', 'reason', 'ts'])
      .where('user_id', '=', q.userId);
    if (q.missionId !== undefined) query = query.where('mission_id', '=', q.missionId);
    const rows = await query.orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      id: Number(r.id),
      missionId: r.mission_id,
      iterationId: r.iteration_id,
      tableName: r.table_name,
      recordId: r.record_id,
      status: r.status,
      reason: r.reason,
      ts: r.ts.toISOString(),
    }));
  });
}
