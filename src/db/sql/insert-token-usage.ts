// Charges one run's tokens to mana_ai.token_usage (sql/functions/snapshot-store.sql), inside the
// write-back's transaction, so "written back" and "charged" are one fact.
// The daemon may only insert here; old rows are pruned by the table's own
// insert trigger.

import { sql, type Transaction } from 'kysely';
import type { Database } from '../schema.js';

export async function insertTokenUsage(
  trx: Transaction<Database>,
  u: { userId: string; agentId: string | null; missionId: string; tokens: number; estimated: boolean; runId: number },
): Promise<void> {
  await sql`
    INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, estimated, run_id)
    VALUES (${u.userId}, ${u.agentId}, ${u.missionId}, ${u.tokens}, ${u.estimated}, ${u.runId})`.execute(trx);
}

/** The agent's name as it stands now (its record may have changed during the run); null when the record is gone. */
export async function agentNameNow(trx: Transaction<Database>, q: { userId: string; agentId: string }): Promise<string | null> {
  const { rows } = await sql<{ name: string | null }>`SELECT mana_ai.agent_name(${q.userId}, ${q.agentId}) AS name`.execute(trx);
  return rows[0]?.name ?? null;
}
