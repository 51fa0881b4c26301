// Reads a mission's v2 grant state (sql/migrations/024_mission_grants.sql,
// kept by the trigger) inside the caller's user-scoped transaction: every
// grant seen for the mission, newest first, and whether it is revoked. The
// daemon only reads it; row-level security shows the owner's rows only.

import { sql } from 'kysely';
import type { ScopedTx } from '../scoped.js';
import type { SeenGrant } from '../../grants/v2/grant-choice.js';

export async function readGrantState(trx: ScopedTx, q: { userId: string; missionId: string }): Promise<SeenGrant[]> {
  const { rows } = await sql<{ grant_id: string; issued_at: Date; grant_body: unknown; revoked: boolean }>`
    SELECT g.grant_id, g.issued_at, g.grant_body, (r.grant_id IS NOT NULL) AS revoked
      FROM mana_ai.mission_grants g
      LEFT JOIN mana_ai.grant_revocations r
        ON r.user_id = g.user_id AND r.mission_id = g.mission_id AND r.grant_id = g.grant_id
     WHERE g.user_id = ${q.userId} AND g.mission_id = ${q.missionId}
     ORDER BY g.issued_at DESC, g.grant_id`.execute(trx);
  return rows.map((r) => ({ grantId: r.grant_id, issuedMs: r.issued_at.getTime(), body: r.grant_body, revoked: r.revoked }));
}
