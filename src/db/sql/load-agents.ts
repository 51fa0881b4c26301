// Loads the gate fields of the agents of some partitions (sql/functions/snapshot-store.sql): what
// the reactor needs to hold a mission back without asking the database.
// Records, names and policies stay in the database; the claim reads them.

import type pg from 'pg';

export type AgentGate = 'active' | 'paused' | 'archived' | 'deleted';

export interface AgentGateRow {
  ref: number;
  version: number;
  partition: number;
  gate: AgentGate;
  maxConcurrent: number;
  budget: number | null;
}

export async function loadAgents(pool: pg.Pool, q: { partitions: readonly number[] }): Promise<AgentGateRow[]> {
  if (q.partitions.length === 0) return [];
  const { rows } = await pool.query<[number, number, number, AgentGate, number, number | null]>({
    text: `SELECT agent_ref, version, partition, gate, max_concurrent, max_tokens_per_day
             FROM mana_ai.agent_snapshots
            WHERE partition = ANY($1::int[])`,
    values: [[...q.partitions]],
    rowMode: 'array',
  });
  return rows.map((r) => ({ ref: r[0], version: r[1], partition: r[2], gate: r[3], maxConcurrent: r[4], budget: r[5] }));
}
