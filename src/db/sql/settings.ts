// Settings the database keeps for the trigger (sql/migrations/021_settings.sql),
// read by the daemon for /health. Read-only; `npm run migrate -- --webapp`
// writes them (src/db/migrate.ts).

import type pg from 'pg';

/** The merge rule the trigger folds with; v0.4 when unset. */
export async function readMergeRule(pool: pg.Pool): Promise<'v0.4' | 'head'> {
  const { rows } = await pool.query<{ value: string }>(`SELECT value FROM mana_ai.settings WHERE key = 'merge_rule'`);
  return rows[0]?.value === 'head' ? 'head' : 'v0.4';
}
