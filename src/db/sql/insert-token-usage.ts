// Charges one answer's tokens to mana_ai.token_usage (src/run/charge.ts, as
// each answer arrives), in one statement that scopes the transaction to
// each row's user (mana_ai.charge_answers), shared by the answers that
// arrive together. An answer already charged (its run and
// answer key) is not charged again.
// The daemon may only insert here; old rows are pruned by the table's own
// insert trigger.

import { sql, type Kysely, type Transaction } from 'kysely';
import { EmptyUserIdError } from '../scoped.js';
import { Batcher, batcherOf } from '../batcher.js';
import type { Database } from '../schema.js';

export interface Charge { userId: string; agentId: string | null; missionId: string; tokens: number; estimated: boolean; runId: number; answerKey: string }

const chargeBatchers = new WeakMap<object, Batcher<Charge, void>>();

/**
 * Charges one answer (mana_ai.charge_answers, which scopes the transaction
 * to each row's user): answers arriving together share one statement, a
 * lone one goes at once (issue 30).
 */
export async function chargeAnswer(db: Kysely<Database>, u: Charge): Promise<void> {
  if (typeof u.userId !== 'string' || u.userId.length === 0) throw new EmptyUserIdError();
  return batcherOf(chargeBatchers, db, () => new Batcher<Charge, void>(async (items) => {
    const rows = items.map((c) => ({
      user_id: c.userId, agent_id: c.agentId, mission_id: c.missionId, tokens: Math.max(0, Math.min(2_147_483_647, Math.round(c.tokens))),
      estimated: c.estimated, run_id: c.runId, answer_key: c.answerKey,
    }));
    await sql`SELECT mana_ai.charge_answers(${JSON.stringify(rows)}::jsonb)`.execute(db);
    return items.map(() => undefined);
  })).submit(u);
}

/** The agent's name as it stands now (its record may have changed during the run); null when the record is gone. */
export async function agentNameNow(trx: Transaction<Database>, q: { userId: string; agentId: string }): Promise<string | null> {
  const { rows } = await sql<{ name: string | null }>`SELECT mana_ai.agent_name(${q.userId}, ${q.agentId}) AS name`.execute(trx);
  return rows[0]?.name ?? null;
}
