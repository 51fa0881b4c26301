// The operator's view of agents (`npm run inspect`): per agent its gate,
// budget, tokens used in the last 24 h and when it may run next, from the
// view mana_ai.agent_budget (sql/functions/snapshot-store.sql). Read-only.

import type pg from 'pg';

export interface AgentRow {
  userId: string;
  agentId: string;
  name: string | null;
  state: string;
  maxConcurrent: number;
  budget: number | null;
  used24h: number;
  overshoot: number | null;
  runsInFlight: number;
  missions: number;
  /** null: not until the user changes the agent (paused, archived, deleted, budget 0) */
  mayRunAt: string | null;
}

export async function inspectAgents(pool: pg.Pool, q: { userId?: string | undefined; limit: number }): Promise<AgentRow[]> {
  const { rows } = await pool.query(
    `SELECT user_id, agent_id, name, state, max_concurrent, budget::float8 AS budget, used_24h::float8 AS used_24h,
            overshoot::float8 AS overshoot, runs_in_flight, missions, may_run_at
       FROM mana_ai.agent_budget
      WHERE ($1::text IS NULL OR user_id = $1)
      ORDER BY may_run_at DESC NULLS FIRST, user_id, agent_id
      LIMIT $2`,
    [q.userId ?? null, q.limit],
  );
  return rows.map((r) => ({
    userId: r.user_id,
    agentId: r.agent_id,
    name: r.name,
    state: r.state,
    maxConcurrent: r.max_concurrent,
    budget: r.budget,
    used24h: r.used_24h,
    overshoot: r.overshoot,
    runsInFlight: r.runs_in_flight,
    missions: r.missions,
    mayRunAt: r.may_run_at ? (r.may_run_at as Date).toISOString() : null,
  }));
}
