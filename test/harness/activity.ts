// What the daemon's connections are doing, as pg_stat_activity shows it:
// two samples that differ mean a statement ran in between (the idle tests).

import type pg from 'pg';

/** Statements the daemon's connections ran, as pg_stat_activity shows them: compare two samples to see activity. */
export async function daemonActivity(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query(
    `SELECT pid, application_name, query_start, state_change FROM pg_stat_activity
      WHERE datname = current_database() AND application_name IN ('mana-ai', 'mana-ai-listener', 'mana-ai-partitions', 'mana-ai-watch') ORDER BY pid`,
  );
  return rows.map((r) => `${r.pid}/${r.application_name}/${r.query_start?.toISOString()}/${r.state_change?.toISOString()}`);
}
