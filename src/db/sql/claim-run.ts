// Claims (mission, due time) through mana_ai.claim_run (sql/functions/snapshot-store.sql): the
// unique key of mission_runs makes the run happen once across daemons and
// crashes; the function re-checks the snapshot and the mission's agent
// (state, runs in flight, tokens of the last 24 h) in the same statement.
// The claim names its daemon's membership session (the witness): while that
// session lives nobody takes the run; once it is gone a peer may, at once.

import type pg from 'pg';

/** What the claim saw of the mission's agent: its gate fields, and on `claimed` the record the run plans with. */
export interface ClaimAgent {
  ref: number;
  version: number;
  gate: 'active' | 'paused' | 'archived' | 'deleted';
  maxConcurrent: number;
  budget: number | null;
  /** tokens of the last 24 h, when the agent has a budget */
  used?: number;
  id?: string;
  record?: Record<string, unknown>;
}

export type ClaimResult =
  | { outcome: 'claimed'; runId: number; attempts: number; userId: string; missionId: string; record: Record<string, unknown>; version: number; agent: ClaimAgent | null;
      /** the snapshot's parked flag as the claim read it */
      parked: boolean }
  | { outcome: 'moved' | 'finished' | 'agent-paused' | 'agent-archived' | 'agent-deleted'; agent?: ClaimAgent | null }
  | { outcome: 'held' | 'throttled'; retryAtMs: number }
  | { outcome: 'agent-busy'; retryAtMs: number | null; agent: ClaimAgent }
  /** retryAtMs null: not before the budget changes */
  | { outcome: 'over-budget'; retryAtMs: number | null; agent: ClaimAgent };

export type Claimed = Extract<ClaimResult, { outcome: 'claimed' }>;

/** The session that vouches for a claim: membership slot and the backend pid holding its lock. */
export interface ClaimWitness {
  /** the membership session (sql/functions/claim.sql); null while the partition connection is down */
  slot: number | null;
  pid: number | null;
  /** the daemon process's generation (sql/functions/claim.sql): what decides whether the claimer is alive */
  gen: number;
}

export interface ClaimRequest { sid: number; dueMs: number; workerId: string; leaseMs: number; minGapMs: number; witness: ClaimWitness | null }

// The two claim statements are named (prepared once per connection): a
// claim is on the path from a due time to the LLM, and parsing and planning
// it again each time was a measurable part of it (issue 30).
export async function claimRun(pool: pg.Pool, q: ClaimRequest): Promise<ClaimResult> {
  const { rows } = await pool.query({
    name: 'mana_ai.claim_run',
    text: `SELECT outcome, run_id, attempts, retry_at, user_id, mission_id, record, version, agent, parked
       FROM mana_ai.claim_run($1, $2::timestamptz, $3, make_interval(secs => $4::float8 / 1000),
                              make_interval(secs => $5::float8 / 1000), $6::int, $7::int, $8::int)`,
    values: [q.sid, new Date(q.dueMs).toISOString(), q.workerId, q.leaseMs, q.minGapMs, q.witness?.slot ?? null, q.witness?.pid ?? null, q.witness?.gen ?? null],
  });
  return claimResultOf(rows[0]!);
}

/**
 * Several claims in one statement (mana_ai.claim_runs: the new runs of
 * plain missions in one INSERT, every other item through claim_run, in one
 * transaction), the runs that leave the queue together (issue 30). Each is
 * answered as claim_run answers it alone. They share the worker, lease,
 * gap and witness of the first.
 */
export async function claimRuns(pool: pg.Pool, qs: readonly ClaimRequest[]): Promise<ClaimResult[]> {
  // a lone claim as itself: the set-returning wrapper costs a lone run time it does not save
  if (qs.length === 1) return [await claimRun(pool, qs[0]!)];
  const q = qs[0]!;
  const { rows } = await pool.query({
    name: 'mana_ai.claim_runs',
    text: `SELECT ord, outcome, run_id, attempts, retry_at, user_id, mission_id, record, version, agent, parked
       FROM mana_ai.claim_runs($1::bigint[], $2::timestamptz[], $3, make_interval(secs => $4::float8 / 1000),
                               make_interval(secs => $5::float8 / 1000), $6::int, $7::int, $8::int)`,
    values: [qs.map((x) => x.sid), qs.map((x) => new Date(x.dueMs).toISOString()), q.workerId, q.leaseMs, q.minGapMs, q.witness?.slot ?? null, q.witness?.pid ?? null, q.witness?.gen ?? null],
  });
  const out: ClaimResult[] = new Array(qs.length);
  for (const r of rows) out[r.ord - 1] = claimResultOf(r);
  for (let i = 0; i < out.length; i++) if (!out[i]) throw new Error(`claim_runs answered no row for item ${i + 1}`);
  return out;
}

function claimResultOf(r: pg.QueryResultRow): ClaimResult {
  const agent = (r.agent ?? null) as ClaimAgent | null;
  const retryAtMs = r.retry_at === null ? null : (r.retry_at as Date).getTime();
  switch (r.outcome) {
    case 'claimed':
      return { outcome: 'claimed', runId: r.run_id, attempts: r.attempts, userId: r.user_id, missionId: r.mission_id, record: r.record, version: r.version, agent, parked: r.parked === true };
    case 'held':
    case 'throttled':
      return { outcome: r.outcome, retryAtMs: retryAtMs! };
    case 'agent-busy':
    case 'over-budget':
      return { outcome: r.outcome, retryAtMs, agent: agent! };
    default:
      return { outcome: r.outcome, agent };
  }
}

/** After the lock connection came back: moves the witness of our runs in flight to the new session; returns the runs still ours. */
export async function adoptClaims(pool: pg.Pool, q: { runIds: number[]; workerId: string; witness: { slot: number; pid: number } }): Promise<number[]> {
  if (q.runIds.length === 0) return [];
  const { rows } = await pool.query<{ run_id: number }>(
    'SELECT run_id FROM mana_ai.adopt_claims($1::bigint[], $2, $3, $4) AS run_id',
    [q.runIds, q.workerId, q.witness.slot, q.witness.pid],
  );
  return rows.map((r) => Number(r.run_id));
}
