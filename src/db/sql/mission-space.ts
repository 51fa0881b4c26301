// The space mana-sync stored on a mission's insert (mana_ai.mission_space,
// sql/functions/rebuild.sql), read inside the owner's scoped transaction.
// Never the mission data's spaceId, a free field any device can write.

import { sql } from 'kysely';
import type { ScopedTx } from '../scoped.js';

/** Null: a personal mission, or none of the user's. */
export async function storedMissionSpace(trx: ScopedTx, q: { userId: string; missionId: string }): Promise<string | null> {
  const { rows } = await sql<{ s: string | null }>`SELECT mana_ai.mission_space(${q.userId}, ${q.missionId}) AS s`.execute(trx);
  return rows[0]?.s ?? null;
}
