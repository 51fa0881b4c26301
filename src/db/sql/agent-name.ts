// The agent's name as the write-back finds it (src/write-back/write-back.ts).
// Charges are written with the run's other writes (src/db/sql/run-writes.ts).

import { sql, type Transaction } from 'kysely';
import type { Database } from '../schema.js';

/** The agent's name as it stands now (its record may have changed during the run); null when the record is gone. */
export async function agentNameNow(trx: Transaction<Database>, q: { userId: string; agentId: string }): Promise<string | null> {
  const { rows } = await sql<{ name: string | null }>`SELECT mana_ai.agent_name(${q.userId}, ${q.agentId}) AS name`.execute(trx);
  return rows[0]?.name ?? null;
}
