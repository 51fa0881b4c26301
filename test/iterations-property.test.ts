// Issue 28, as a property: over random interleavings of device writes
// (fresh and stale devices, the seed's and HEAD's shapes), real runner
// write-backs and daemon restarts between a loss and its repair, the
// iteration ids of the mission's final fold are exactly the union of all
// that ever reached the server, each once, in startedAt order; and what a
// device pulls agrees. test/head-schema/ runs it again on today's table.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import { compareCodePoints, foldRows, type ChangeRow } from '../src/merge/merge.js';
import { pushChange, webappMission } from './harness/changes.js';
import { createTestDatabase, FIELD_MAP, MERGE_RULE, SYNC_SCHEMA, type TestDb } from './harness/db.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { eventually } from './harness/wait.js';

const RUNS = Number(process.env['ITERATION_PROPERTY_RUNS'] ?? 30);
let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon | null = null;

const start = async () => {
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_MIN_RUN_GAP_MS: '0' });
};
before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer('Plan', []) }));
  await start();
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

type Op =
  | { kind: 'device'; device: 0 | 1; fresh: boolean; head: boolean; action: 'edit' | 'append' | 'feedback' }
  | { kind: 'runner' }
  | { kind: 'restart' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('device' as const), device: fc.constantFrom<0 | 1>(0, 1), fresh: fc.boolean(), head: fc.boolean(), action: fc.constantFrom('edit' as const, 'append' as const, 'feedback' as const) }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'runner' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

interface It { id: string; startedAt: string; [k: string]: unknown }
const iso = (ms: number) => new Date(ms).toISOString();
const idsOf = (its: unknown): string[] => (Array.isArray(its) ? its.map((i) => (i as It).id) : []);
const order = (its: It[]) => [...its].sort((a, b) => compareCodePoints(a.startedAt, b.startedAt) || compareCodePoints(a.id, b.id)).map((i) => i.id);

it(`the final fold holds exactly every iteration that reached the server (${RUNS} random interleavings, ${SYNC_SCHEMA} schema)`, async () => {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 2, maxLength: 6 }), async (ops) => {
      try {
        await oneSequence(ops);
      } catch (error) {
        console.log(`# failed: ${JSON.stringify(ops)}: ${(error as Error).message}`);
        const m = `m-prop-${n}`;
        console.log('# snapshot', JSON.stringify((await db.pool.query(`SELECT record -> 'iterations' AS its FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [m])).rows));
        console.log('# losses', JSON.stringify((await db.pool.query(`SELECT id, iterations, restored_at, outcome FROM mana_ai.lost_iterations WHERE mission_id = $1`, [m])).rows));
        console.log('# rows', JSON.stringify((await db.pool.query(`SELECT client_id, data -> 'iterations' AS its, field_timestamps, created_at FROM sync_changes WHERE record_id = $1 ORDER BY created_at, id`, [m])).rows));
        throw error;
      }
    }),
    { numRuns: RUNS, seed: 2828 },
  );
  async function oneSequence(ops: Op[]): Promise<void> {
      n += 1;
      const user = `u-prop-${n}`;
      const id = `m-prop-${n}`;
      const seen = new Map<string, It>();
      const views: It[][] = [[], []];
      await pushChange(db.pool, { userId: user, recordId: id, op: 'insert', data: webappMission({ id, title: 'Eigenschaft', nextRunAt: iso(Date.now() + 3_600_000) }) });
      const current = async (): Promise<It[]> => (await db.pool.query(`SELECT record -> 'iterations' AS its FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`, [user, id])).rows[0].its ?? [];
      let down = false;
      for (const [k, op] of ops.entries()) {
        if (op.kind === 'restart') {
          if (down) continue;
          // the next writes happen while no daemon runs; a new one repairs what they lost at its load
          await daemon!.stop();
          daemon = null;
          down = true;
          continue;
        }
        if (op.kind === 'runner') {
          if (down) continue; // a write-back needs a daemon
          const due = Date.now() + 30;
          const run = daemon!.waitForRun((e) => e.missionId === id && e.dueMs === due);
          await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data: { nextRunAt: iso(due) }, fieldTimestamps: { nextRunAt: iso(Date.now()) } });
          const ev = await run;
          if (ev.iteration) seen.set(ev.iteration.id, ev.iteration as unknown as It);
          continue;
        }
        if (op.fresh) views[op.device] = await current();
        let view = views[op.device]!;
        if (op.action === 'append') {
          const fg: It = { id: `fg-${n}-${k}`, startedAt: iso(Date.now()), overallStatus: 'awaiting-review', plan: [], source: 'browser' };
          view = [...view, fg];
          seen.set(fg.id, fg);
        } else if (op.action === 'feedback' && view.length > 0) {
          view = view.map((x, i) => (i === 0 ? { ...x, userFeedback: `Rückmeldung ${k}`, overallStatus: 'rejected' } : x));
        }
        views[op.device] = view;
        const ts = iso(Date.now());
        const data: Record<string, unknown> = { title: `Titel ${k}`, inputs: [], iterations: view, ...(op.head ? {} : { updatedAt: ts }) };
        await pushChange(db.pool, { userId: user, recordId: id, op: 'update', data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((f) => [f, ts])) });
      }
      if (down) await start();
      const want = order([...seen.values()]);
      await eventually(async () => {
        const pending = (await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.lost_iterations WHERE mission_id = $1 AND user_id = $2 AND restored_at IS NULL`, [id, user])).rows[0].n;
        return pending === 0 && JSON.stringify([...new Set(idsOf(await current()))].sort()) === JSON.stringify([...want].sort());
      }, `every iteration of ${id} back: ${JSON.stringify(ops)}`, 20_000);
      const final = idsOf(await current());
      assert.deepEqual(final, want, `each once, in startedAt order: ${JSON.stringify(ops)}`);
      const { rows } = await db.pool.query(`SELECT op, data, ${FIELD_MAP} AS fts, created_at FROM sync_changes WHERE user_id = $1 AND record_id = $2 ORDER BY created_at, id`, [user, id]);
      const device = foldRows(rows.map((r): ChangeRow => ({ op: r.op, recordId: id, data: r.data, fieldTimestamps: r.fts ?? {}, createdAt: r.created_at.toISOString() })), undefined, MERGE_RULE);
      assert.deepEqual(idsOf(device?.record['iterations']), want, 'what a device pulls');
  }
});
