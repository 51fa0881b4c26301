// The batched statements of issue 30, forced against the real database as
// the runtime role: several claims in one statement answer each as alone,
// in order; a batch of write-backs never waits for a snapshot row, its
// first neither (a busy lock is answered `changed`, nothing of that run
// written, and the general path writes it once the lock is free, waiting
// at most its bound); a run whose mission changed since its claim is
// `changed` too.
// Charges ride in the write-backs' statement, first; one that fails fails
// only the charges, never the write-backs beside it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createDb, createPool, type Db } from '../src/db/pool.js';
import { claimRuns, type ClaimRequest, type Claimed } from '../src/db/sql/claim-run.js';
import { writeBack, type WriteBackInput } from '../src/write-back/write-back.js';
import { ChargeFailed, chargeAnswer, writeUnchanged } from '../src/db/sql/run-writes.js';
import { planIteration } from '../src/write-back/iteration.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let pool: pg.Pool;
let kdb: Db;
before(async () => {
  db = await createTestDatabase();
  pool = createPool({ connectionString: db.daemonUrl, applicationName: 'write-back-batch', max: 4 });
  kdb = createDb(pool);
});
after(async () => {
  await kdb?.destroy();
  await db?.drop();
});

const due = Date.parse('2026-12-07T08:00:00.000Z');
const USER = 'u-batch';

async function missions(ids: string[]): Promise<Map<string, number>> {
  for (const id of ids) await pushChange(db.pool, { userId: USER, recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: new Date(due).toISOString() }) });
  const { rows } = await db.pool.query<{ mission_id: string; sid: string }>('SELECT mission_id, sid FROM mana_ai.mission_snapshots WHERE mission_id = ANY($1)', [ids]);
  return new Map(rows.map((r) => [r.mission_id, Number(r.sid)]));
}

const request = (sid: number): ClaimRequest => ({ sid, dueMs: due, workerId: 'w-batch', leaseMs: 600_000, minGapMs: 0, witness: null });

function input(c: Claimed, sid: number): WriteBackInput {
  const iteration = planIteration(`it-${c.missionId}`, new Date(due).toISOString(), new Date(due + 1000).toISOString(), { summary: 'Plan', steps: [] }, 'pv');
  return {
    runId: c.runId, workerId: 'w-batch', attempts: c.attempts, sid, userId: c.userId, missionId: c.missionId, dueMs: due, iteration,
    // the next run from the record it is given: a changed title stands for a changed cadence
    nextRunAt: (record) => (record['title'] === 'geändert' ? due + 7_200_000 : due + 3_600_000), nowMs: Date.now(), agent: null, generation: 'v0.4', objective: '', maxConsecutiveFailures: 5,
  };
}

const iterationsOf = async (id: string) =>
  (await db.pool.query<{ n: number }>(`SELECT jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [id])).rows[0]!.n;

describe('batched claims and write-backs (issue 30)', () => {
  it('claims several runs in one statement, each answered as alone and in order', async () => {
    const sids = await missions(['b-1', 'b-2', 'b-3']);
    const out = await claimRuns(pool, [request(sids.get('b-2')!), request(sids.get('b-1')!), request(999_999), request(sids.get('b-3')!)]);
    assert.deepEqual(out.map((c) => c.outcome), ['claimed', 'claimed', 'moved', 'claimed']);
    assert.deepEqual(out.filter((c): c is Claimed => c.outcome === 'claimed').map((c) => c.missionId), ['b-2', 'b-1', 'b-3']);
    const again = await claimRuns(pool, [request(sids.get('b-1')!), request(sids.get('b-2')!)]);
    assert.deepEqual(again.map((c) => c.outcome), ['held', 'held'], 'claimed once');
  });

  it('a write-back batch waits for no row, its first neither: a busy lock is `changed`, and the general path writes that run once the lock is free', async () => {
    const sids = await missions(['w-1', 'w-2']);
    const [c1, c2] = (await claimRuns(pool, [request(sids.get('w-1')!), request(sids.get('w-2')!)])) as Claimed[];
    // another transaction holds w-1's snapshot row, as a mana-sync insert's trigger would
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM mana_ai.mission_snapshots WHERE sid = $1 FOR UPDATE', [sids.get('w-1')]);
    try {
      // a batch that waited would fail here with the statement timeout instead of answering
      const batchClient = await pool.connect();
      let rows: { ord: number; outcome: string }[];
      try {
        await batchClient.query(`SET statement_timeout = '10s'`);
        ({ rows } = await batchClient.query<{ ord: number; outcome: string }>(`SELECT ord, outcome FROM mana_ai.write_back_runs('w-batch', $1::jsonb)`, [JSON.stringify([c1!, c2!].map((c) => ({
          sid: sids.get(c.missionId), version: c.version, run_id: c.runId, attempts: c.attempts, user_id: c.userId, mission_id: c.missionId, iteration_id: `it-${c.missionId}`,
          prompt_version: 'pv', data: { iterations: [{ id: `it-${c.missionId}` }] }, field_ts: { iterations: new Date().toISOString() }, client_id: 'mana-ai-runner', actor: { kind: 'system' }, space_id: null,
        })))]));
      } finally {
        await batchClient.query('RESET statement_timeout');
        batchClient.release();
      }
      assert.deepEqual(rows, [{ ord: 1, outcome: 'changed' }, { ord: 2, outcome: 'written' }], 'the first lock is not waited for, and the run behind it is written');
      assert.equal(await iterationsOf('w-2'), 1);
      const status = async (runId: number) => (await db.pool.query<{ status: string }>('SELECT status FROM mana_ai.mission_runs WHERE run_id = $1', [runId])).rows[0]!.status;
      assert.equal(await status(c1!.runId), 'running', 'nothing of the busy run was written');
      // the general path waits for the lock and writes it
      const general = writeBack(kdb, input(c1!, sids.get('w-1')!), { version: c1!.version, record: c1!.record });
      await eventually(async () => (await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'write-back-batch' AND wait_event_type = 'Lock'`)).rows[0].n === 1,
        'the general path waits for the row lock');
      assert.equal(await status(c1!.runId), 'running');
      await holder.query('COMMIT');
      assert.equal((await general).outcome, 'written');
      assert.equal(await status(c1!.runId), 'done');
      assert.equal(await iterationsOf('w-1'), 1);
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
  });

  it('the general path waits for a busy row at most lockWaitMs (lock_not_available), a shorter lock_timeout of the session stands, and the setting is put back', async () => {
    const sids = await missions(['g-1']);
    const [c] = (await claimRuns(pool, [request(sids.get('g-1')!)])) as Claimed[];
    const holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM mana_ai.mission_snapshots WHERE sid = $1 FOR UPDATE', [sids.get('g-1')]);
    const client = await pool.connect();
    try {
      // the bound: past it the statement fails with 55P03, not with the (longer) statement timeout
      await client.query(`SET statement_timeout = '20s'`);
      const bounded = writeBack(kdb, { ...input(c!, sids.get('g-1')!), lockWaitMs: 200 });
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting after 10 s: the wait is not bounded')), 10_000).unref());
      await assert.rejects(Promise.race([bounded, late]), (e: { code?: string }) => e.code === '55P03');
      // an operator's lock_timeout shorter than ours stands (ours would wait 15 s, the statement timeout 10 s)
      await client.query(`SET statement_timeout = '10s'`);
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '100ms'`);
      await assert.rejects(client.query('SELECT * FROM mana_ai.lock_snapshot_for_write_back($1, 15000)', [sids.get('g-1')]), (e: { code?: string }) => e.code === '55P03');
      await client.query('ROLLBACK');
      await holder.query('COMMIT');
      // a free row: locked, and the session's setting is as it was
      await client.query('BEGIN');
      await client.query(`SET LOCAL lock_timeout = '7s'`);
      const { rows } = await client.query('SELECT version FROM mana_ai.lock_snapshot_for_write_back($1, 200)', [sids.get('g-1')]);
      assert.equal(rows.length, 1);
      assert.equal((await client.query('SHOW lock_timeout')).rows[0].lock_timeout, '7s');
      await client.query('ROLLBACK');
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.query('RESET statement_timeout');
      client.release();
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
    }
    // nothing of the run was written: it is still this claim's, and the general path writes it now
    assert.equal((await writeBack(kdb, { ...input(c!, sids.get('g-1')!), lockWaitMs: 200 })).outcome, 'written');
    assert.equal(await iterationsOf('g-1'), 1);
  });

  it('charges and write-backs submitted together share one statement, charges first; a failing charge fails only the charges', async () => {
    const sids = await missions(['p-1']);
    const [c] = (await claimRuns(pool, [request(sids.get('p-1')!)])) as Claimed[];
    const item = {
      sid: sids.get('p-1')!, version: c!.version, run_id: c!.runId, attempts: c!.attempts, user_id: c!.userId, mission_id: 'p-1', iteration_id: 'it-p-1',
      prompt_version: 'pv', data: { iterations: [{ id: 'it-p-1' }] }, field_ts: { iterations: new Date().toISOString() }, client_id: 'mana-ai-runner', actor: { kind: 'system' }, space_id: null,
    };
    const charge = (answerKey: string, runId: number) => ({ userId: USER, agentId: null, missionId: 'p-1', tokens: 7, estimated: false, runId, answerKey });
    // in one turn: a charge whose run id the database cannot take (not an integer), then the write-back
    const results = await Promise.allSettled([chargeAnswer(kdb, charge('1:1', 1.5)), writeUnchanged(kdb, 'w-batch', item)]);
    assert.equal(results[0].status, 'rejected');
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof ChargeFailed, 'the charge is answered with its failure');
    assert.deepEqual(results[1], { status: 'fulfilled', value: 'written' }, 'the write-back beside it stands');
    assert.equal(await iterationsOf('p-1'), 1);
    // a good charge and the same run's write-back again: the charge is committed, the write is refused (the run is done)
    const again = await Promise.all([chargeAnswer(kdb, charge('1:2', c!.runId)), writeUnchanged(kdb, 'w-batch', item)]);
    assert.deepEqual(again, [undefined, 'changed']);
    const charged = await db.pool.query(`SELECT answer_key, tokens_used FROM mana_ai.token_usage WHERE run_id = $1`, [c!.runId]);
    assert.deepEqual(charged.rows, [{ answer_key: '1:2', tokens_used: 7 }]);
    const direct = await pool.query(`SELECT ord, outcome FROM mana_ai.write_run_batch($1::jsonb, NULL, '[]'::jsonb)`, [JSON.stringify([{ user_id: '', tokens: 1, run_id: 1, answer_key: 'x' }])]);
    assert.deepEqual(direct.rows, [{ ord: 0, outcome: 'charge-failed: 22023' }], 'a charge without a user is refused as a row, not an error');
  });

  it('a run whose mission changed since its claim is written by the general path, with the record as it stands', async () => {
    const sids = await missions(['c-1']);
    const [c] = (await claimRuns(pool, [request(sids.get('c-1')!)])) as Claimed[];
    await pushChange(db.pool, { userId: USER, recordId: 'c-1', op: 'update', data: { title: 'geändert' }, fieldTimestamps: { title: new Date(Date.now() + 1000).toISOString() } });
    const written = await writeBack(kdb, input(c!, sids.get('c-1')!), { version: c!.version, record: c!.record });
    assert.equal(written.outcome, 'written');
    assert.equal(written.outcome === 'written' && written.nextRunAtMs, due + 7_200_000, 'the next run from the record as it stands, not as the claim read it');
    const { rows } = await db.pool.query(`SELECT record ->> 'title' AS title, record ->> 'nextRunAt' AS next, jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = 'c-1'`);
    assert.deepEqual(rows[0], { title: 'geändert', next: new Date(due + 7_200_000).toISOString(), n: 1 }, 'the user\'s change stands beside the iteration');
  });
});
