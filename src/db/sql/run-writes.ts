// The two writes every run makes, shared by the runs that make them at the
// same moment (issue 30): each answer's charge (src/run/charge.ts) and the
// write-back of a run whose mission did not change since its claim
// (src/write-back/write-back.ts). Whatever was submitted while a batch was
// on its way goes in the next one, as one statement
// (mana_ai.write_run_batch): charges first, then write-backs, so a run's
// charge is never committed after its plan. A charge that fails fails only
// the charges of its batch; the write-backs beside it stand.
// Never builds SQL from values: the batch travels as two jsonb parameters.

import { sql, type Kysely } from 'kysely';
import { Batcher, batcherOf } from '../batcher.js';
import { EmptyUserIdError } from '../scoped.js';
import type { Database } from '../schema.js';

export interface Charge { userId: string; agentId: string | null; missionId: string; tokens: number; estimated: boolean; runId: number; answerKey: string }

/** A write-back built from the claim's record (write_back_runs' item). */
export interface UnchangedWrite {
  sid: number; version: number; run_id: number; attempts: number; user_id: string; mission_id: string; iteration_id: string;
  prompt_version: string | null; data: unknown; field_ts: unknown; client_id: string; actor: unknown; space_id: string | null;
}

type Item = { charge: Charge } | { write: UnchangedWrite; workerId: string };
/** a write's outcome (written | lost-claim | changed); a charge's: null, or why it failed */
type Out = string | null | ChargeFailed;

export class ChargeFailed extends Error {
  override name = 'ChargeFailed';
}

const batchers = new WeakMap<Kysely<Database>, Batcher<Item, Out>>();

/** One batcher per database handle. */
const batcher = (db: Kysely<Database>) => batcherOf(batchers, db, () => new Batcher<Item, Out>((items) => sendBatch(db, items), 64));

const chargeRow = (c: Charge) => ({
  user_id: c.userId, agent_id: c.agentId, mission_id: c.missionId, tokens: Math.max(0, Math.min(2_147_483_647, Math.round(c.tokens))),
  estimated: c.estimated, run_id: c.runId, answer_key: c.answerKey,
});

async function sendBatch(db: Kysely<Database>, items: Item[]): Promise<Out[]> {
  const out: Out[] = items.map(() => null);
  const charged: number[] = [];
  // writes by worker: one per daemon, so one statement; two daemons on one pool (tests) take one each
  const byWorker = new Map<string, number[]>();
  items.forEach((it, i) => {
    if ('charge' in it) charged.push(i);
    else {
      const list = byWorker.get(it.workerId) ?? [];
      list.push(i);
      byWorker.set(it.workerId, list);
    }
  });
  const groups: [string | null, number[]][] = byWorker.size > 0 ? [...byWorker] : [[null, []]];
  for (const [g, [workerId, writeIdx]] of groups.entries()) {
    const charges = g === 0 ? charged.map((i) => chargeRow((items[i] as { charge: Charge }).charge)) : [];
    const writes = writeIdx.map((i) => (items[i] as { write: UnchangedWrite }).write);
    const { rows } = await sql<{ ord: number; outcome: string }>`
      SELECT ord, outcome FROM mana_ai.write_run_batch(${JSON.stringify(charges)}::jsonb, ${workerId}, ${JSON.stringify(writes)}::jsonb)`.execute(db);
    for (const i of writeIdx) out[i] = 'changed';
    for (const r of rows) {
      if (r.ord === 0) for (const i of charged) out[i] = new ChargeFailed(`the batch's charges failed (${r.outcome})`);
      else out[writeIdx[r.ord - 1]!] = r.outcome;
    }
  }
  return out;
}

/** Charges one answer: with the writes of the same moment, in one statement. */
export async function chargeAnswer(db: Kysely<Database>, c: Charge): Promise<void> {
  if (typeof c.userId !== 'string' || c.userId.length === 0) throw new EmptyUserIdError();
  const r = await batcher(db).submit({ charge: c });
  if (r instanceof ChargeFailed) throw r;
}

/** Writes one run back if its mission is still at the claim's version: written | lost-claim | changed. */
export async function writeUnchanged(db: Kysely<Database>, workerId: string, w: UnchangedWrite): Promise<string> {
  return (await batcher(db).submit({ write: w, workerId })) as string;
}
