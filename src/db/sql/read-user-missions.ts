// What GET /internal/missions/:userId shows an operator about one user:
// the missions with their schedule and last run, the latest runs, the
// agents with their budget and the parked missions (views of sql/views/, 012
// and 020). Read-only.

import type pg from 'pg';

export async function readUserMissions(pool: pg.Pool, userId: string) {
  const { rows: missions } = await pool.query(
    `SELECT ms.mission_id, ms.title, ms.state, ms.deleted, ms.cadence_kind, ms.next_run_at, ms.iteration_count, ms.last_iteration_status,
            ms.last_run_status, ms.last_run_due_at, ms.last_run_error, ms.version, s.agent_id
       FROM mana_ai.mission_schedule ms JOIN mana_ai.mission_snapshots s ON s.sid = ms.sid
      WHERE ms.user_id = $1 ORDER BY ms.mission_id LIMIT 1000`,
    [userId],
  );
  const { rows: runs } = await pool.query(
    `SELECT mission_id, due_at, status, attempts, iteration_id, error, started_at, finished_at
       FROM mana_ai.mission_runs WHERE user_id = $1 ORDER BY due_at DESC LIMIT 100`,
    [userId],
  );
  // agent_budget is security_invoker over token_usage (row-level security): read in the user's scope
  const client = await pool.connect();
  let agents: Record<string, unknown>[];
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [userId]);
    ({ rows: agents } = await client.query(
      `SELECT agent_id, name, state, max_concurrent, budget, used_24h, overshoot, estimated_rows, runs_in_flight, missions, may_run_at, version
         FROM mana_ai.agent_budget WHERE user_id = $1 ORDER BY agent_id LIMIT 1000`,
      [userId],
    ));
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  const { rows: parked } = await pool.query(
    `SELECT mission_id, title, failures, last_error, parked_at FROM mana_ai.parked_missions WHERE user_id = $1 ORDER BY parked_at DESC LIMIT 1000`,
    [userId],
  );
  return { missions, runs, agents, parked };
}
