// Charges one answer's tokens to mana_ai.token_usage (src/run/charge.ts, as
// each answer arrives), in one statement that scopes its own transaction to
// the user (mana_ai.charge_answer). An answer already charged (its run and
// answer key) is not charged again.
// The daemon may only insert here; old rows are pruned by the table's own
// insert trigger.

import { sql, type Kysely, type Transaction } from 'kysely';
import { EmptyUserIdError } from '../scoped.js';
import type { Database } from '../schema.js';

/**
 * The same charge as one statement on its own (mana_ai.charge_answer, which
 * scopes its transaction to the user): one round trip instead of four, on
 * every answer's path (issue 30).
 */
export async function chargeAnswer(
  db: Kysely<Database>,
  u: { userId: string; agentId: string | null; missionId: string; tokens: number; estimated: boolean; runId: number; answerKey: string },
): Promise<void> {
  if (typeof u.userId !== 'string' || u.userId.length === 0) throw new EmptyUserIdError();
  await sql`SELECT mana_ai.charge_answer(${u.userId}, ${u.agentId}, ${u.missionId}, ${Math.max(0, Math.min(2_147_483_647, Math.round(u.tokens)))}::int,
                                         ${u.estimated}, ${u.runId}, ${u.answerKey})`.execute(db);
}

/** The agent's name as it stands now (its record may have changed during the run); null when the record is gone. */
export async function agentNameNow(trx: Transaction<Database>, q: { userId: string; agentId: string }): Promise<string | null> {
  const { rows } = await sql<{ name: string | null }>`SELECT mana_ai.agent_name(${q.userId}, ${q.agentId}) AS name`.execute(trx);
  return rows[0]?.name ?? null;
}
