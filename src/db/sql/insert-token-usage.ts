// Charges one answer's tokens to mana_ai.token_usage, in the caller's
// user-scoped transaction (src/run/charge.ts, as each answer arrives). An
// answer already charged (its run and answer key) is not charged again.
// The daemon may only insert here; old rows are pruned by the table's own
// insert trigger.

import { sql, type Transaction } from 'kysely';
import type { Database } from '../schema.js';

export async function insertTokenUsage(
  trx: Transaction<Database>,
  u: { userId: string; agentId: string | null; missionId: string; tokens: number; estimated: boolean; runId: number; answerKey: string },
): Promise<void> {
  await sql`
    INSERT INTO mana_ai.token_usage (user_id, agent_id, mission_id, tokens_used, estimated, run_id, answer_key)
    VALUES (${u.userId}, ${u.agentId}, ${u.missionId}, ${Math.max(0, Math.min(2_147_483_647, Math.round(u.tokens)))}, ${u.estimated}, ${u.runId}, ${u.answerKey})
    ON CONFLICT (run_id, answer_key) WHERE answer_key IS NOT NULL DO NOTHING`.execute(trx);
}

/** The agent's name as it stands now (its record may have changed during the run); null when the record is gone. */
export async function agentNameNow(trx: Transaction<Database>, q: { userId: string; agentId: string }): Promise<string | null> {
  const { rows } = await sql<{ name: string | null }>`SELECT mana_ai.agent_name(${q.userId}, ${q.agentId}) AS name`.execute(trx);
  return rows[0]?.name ?? null;
}
