// What /health says about the database beside "up": which of mana-sync's
// schemas sync_changes has (sync-schema.ts) and the merge rule the trigger
// folds with (sql/migrations/021_settings.sql), in one round trip, read
// when asked (never cached: a rename is seen at once). Read-only.

import type pg from 'pg';
import { parseSyncSchema, type SyncSchema } from './sync-schema.js';

export async function readHealthFacts(pool: pg.Pool): Promise<{ sync: SyncSchema | null; mergeRule: 'v0.4' | 'head' }> {
  const { rows } = await pool.query<{ s: unknown; rule: string | null }>(
    `SELECT mana_ai.sync_schema() AS s, (SELECT value FROM mana_ai.settings WHERE key = 'merge_rule') AS rule`,
  );
  return { sync: parseSyncSchema(rows[0]?.s), mergeRule: rows[0]?.rule === 'head' ? 'head' : 'v0.4' };
}
