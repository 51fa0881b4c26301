// Issue 28: no iteration that reached the server is lost while its mission
// exists. A device that had not pulled the runner's write-back (or another
// device's iteration) pushes the whole `iterations` array with a fresh
// timestamp whatever field it changed (CONTRACT.md section 13); the
// trigger records what that write erased and the partition's daemon writes
// one repair row. Each case checks the snapshot and what a device pulls
// (the fold of every row of the mission, as the webapp's sync merges them),
// and that the device's own change stands.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { foldRows, type ChangeRow } from '../src/merge/merge.js';
import { pushChange, webappMission } from './harness/changes.js';
import { createTestDatabase, FIELD_MAP, MERGE_RULE, type TestDb } from './harness/db.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer('Plan vom Server', []) }));
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_MIN_RUN_GAP_MS: '0' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const USER = 'u-iter';
const iso = (ms: number) => new Date(ms).toISOString();
type It = { id: string; startedAt: string; overallStatus: string; plan: unknown[]; source?: string; summary?: string; userFeedback?: string };
const browserIteration = (id: string, startedAt: string, extra: Partial<It> = {}): It => ({ id, startedAt, overallStatus: 'awaiting-review', plan: [], source: 'browser', summary: `Lauf ${id}`, ...extra });

/** A device's mission update as the webapp's sync pushes it: the changed fields, `inputs`, `iterations` (whole), one timestamp (seed devices add updatedAt). */
async function devicePush(id: string, fields: Record<string, unknown>, iterations: It[], head = false): Promise<void> {
  const ts = iso(Date.now());
  const data: Record<string, unknown> = { ...fields, inputs: [], iterations, ...(head ? {} : { updatedAt: ts }) };
  await pushChange(db.pool, { userId: USER, recordId: id, op: 'update', data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ts])) });
}

const snapshot = async (id: string) => (await db.pool.query(`SELECT record, deleted FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`, [USER, id])).rows[0];
const ids = (its: unknown) => (Array.isArray(its) ? its.map((i) => (i as It).id) : []);
/** What a device pulls: every row of the mission, folded with the merge rule. */
async function pulled(id: string): Promise<Record<string, unknown> | null> {
  const { rows } = await db.pool.query(`SELECT op, data, ${FIELD_MAP} AS fts, created_at FROM sync_changes WHERE user_id = $1 AND record_id = $2 ORDER BY created_at, id`, [USER, id]);
  const changes: ChangeRow[] = rows.map((r) => ({ op: r.op, recordId: id, data: r.data, fieldTimestamps: r.fts ?? {}, createdAt: r.created_at.toISOString() }));
  return (foldRows(changes, undefined, MERGE_RULE)?.record as Record<string, unknown>) ?? null;
}
const pending = async (id: string) => Number((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.lost_iterations WHERE mission_id = $1 AND restored_at IS NULL`, [id])).rows[0].n);
/** Losses recorded for the mission, restored or not. */
const recorded = async (id: string) => Number((await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.lost_iterations WHERE mission_id = $1`, [id])).rows[0].n);

/** A mission with one server iteration written by a real run; returns that iteration. */
async function missionWithServerIteration(id: string, iterations: It[] = []): Promise<It> {
  const run = runOf(daemon, id);
  await pushChange(db.pool, { userId: USER, recordId: id, op: 'insert', data: webappMission({ id, title: `Mission ${id}`, iterations, nextRunAt: iso(Date.now() + 50) }) });
  const ev = await run;
  assert.equal(ev.outcome, 'planned');
  return ev.iteration as unknown as It;
}

async function expectKept(id: string, want: string[], check: (r: Record<string, unknown>) => void): Promise<void> {
  await eventually(async () => JSON.stringify(ids((await snapshot(id)).record.iterations)) === JSON.stringify(want), `${id}: iterations ${want.join(', ')}`);
  assert.equal(await pending(id), 0, 'every loss settled');
  const snap = (await snapshot(id)).record;
  check(snap);
  const device = await pulled(id);
  assert.deepEqual(ids(device!['iterations']), want, 'what a device pulls has them too');
  check(device!);
}

describe('no iteration is ever lost', () => {
  it('a stale device renames the mission after a write-back: the server iteration and the new title both stand', async () => {
    const id = 'it-rename';
    const server = await missionWithServerIteration(id);
    const restoredBefore = Number(/mana_ai_iterations_restored_total\{[^}]*\} (\d+)/.exec(await daemon.metrics.registry.metrics())?.[1] ?? 0);
    await devicePush(id, { title: 'Umbenannt' }, []);
    await expectKept(id, [server.id], (r) => assert.equal(r['title'], 'Umbenannt'));
    await eventually(async () => Number(/mana_ai_iterations_restored_total\{[^}]*\} (\d+)/.exec(await daemon.metrics.registry.metrics())?.[1]) === restoredBefore + 1, 'counted');
    assert.ok(daemon.logs.some((l) => l.includes('restored them') && l.includes(server.id)), 'a log line names the mission and the ids');
  });

  it('a stale device appends a foreground iteration: both, in startedAt order', async () => {
    const id = 'it-append';
    const server = await missionWithServerIteration(id);
    const fg = browserIteration('fg-1', iso(Date.now() + 1000));
    await devicePush(id, {}, [fg]);
    await expectKept(id, [server.id, 'fg-1'], () => {});
  });

  it('a stale device rejects an older iteration with feedback: its feedback stands and the server iteration comes back', async () => {
    const id = 'it-reject';
    const older = browserIteration('old-1', '2026-01-01T08:00:00.000Z');
    const server = await missionWithServerIteration(id, [older]);
    await devicePush(id, {}, [{ ...older, overallStatus: 'rejected', userFeedback: 'Nicht so' }]);
    await expectKept(id, ['old-1', server.id], (r) => {
      const first = (r['iterations'] as It[])[0]!;
      assert.deepEqual([first.overallStatus, first.userFeedback], ['rejected', 'Nicht so'], "the device's version of the iteration it had wins");
    });
  });

  it('a stale HEAD device approves an older server iteration the way its executor does: its statuses stand, the newer server iteration comes back', async () => {
    const id = 'it-approve';
    const first = await missionWithServerIteration(id);
    // the device saw `first`; the runner writes a second one the device has not seen
    const due = Date.now() + 50;
    const run = daemon.waitForRun((e) => e.missionId === id && e.dueMs === due);
    await pushChange(db.pool, { userId: USER, recordId: id, op: 'update', data: { nextRunAt: iso(due) }, fieldTimestamps: { nextRunAt: iso(Date.now()) } });
    const second = (await run).iteration as unknown as It;
    assert.notEqual(second.id, first.id);
    await devicePush(id, {}, [{ ...first, overallStatus: 'approved', summary: `${first.summary} (ausgeführt)` }], true);
    await expectKept(id, [first.id, second.id], (r) => assert.equal((r['iterations'] as It[])[0]!.overallStatus, 'approved'));
  });

  it('a soft delete by a stale device deletes the mission, and nothing is restored into it', async () => {
    const id = 'it-delete';
    await missionWithServerIteration(id);
    const ts = iso(Date.now());
    await pushChange(db.pool, { userId: USER, recordId: id, op: 'delete', data: { deletedAt: ts } });
    const snap = await snapshot(id);
    assert.equal(snap.deleted, true);
    assert.equal(await recorded(id), 0, 'no loss recorded');
    // a stale edit of the deleted mission that drops the iteration is no loss either
    await devicePush(id, { title: 'zu spät' }, []);
    assert.equal(await recorded(id), 0);
    assert.equal(Number((await db.pool.query(`SELECT count(*)::int AS n FROM sync_changes WHERE record_id = $1 AND client_id = 'mana-ai-runner' AND NOT (data ? 'nextRunAt')`, [id])).rows[0].n), 0, 'no repair row');
  });

  it('a device that has every iteration writes no loss and no repair; a repair that finds the ids back already writes nothing', async () => {
    const id = 'it-fresh';
    const server = await missionWithServerIteration(id);
    await devicePush(id, { title: 'Frisch' }, [server]);
    assert.equal(await pending(id), 0);
    assert.equal(await recorded(id), 0, 'nothing lost, nothing recorded');
  });

  it('ids are compared as JSON values on the one-statement path too: an array that only contains an object id is a loss, one with every id equal is none', async () => {
    // The trigger's one-statement path lets an array through when it contains
    // the stored one (issue 30); for an object id, containment is not
    // equality ({k, extra} contains {k}), so that push must still be a loss.
    const stored = { id: { k: 'a' }, startedAt: iso(Date.now()), overallStatus: 'approved', plan: [] };
    for (const [id, pushed, lost] of [
      ['it-objid-lost', [{ ...stored, id: { k: 'a', extra: 1 } }], 1],
      ['it-objid-kept', [stored, browserIteration('it-objid-b', iso(Date.now() + 10))], 0],
    ] as const) {
      await pushChange(db.pool, { userId: USER, recordId: id, op: 'insert', data: webappMission({ id, state: 'paused', nextRunAt: null, iterations: [stored] }) });
      await devicePush(id, { title: 'Neu' }, pushed as unknown as It[]);
      assert.equal(await recorded(id), lost, id);
      assert.equal((await snapshot(id)).record.title, 'Neu', `${id}: the device's change stands`);
    }
  });

  it('a device clock ahead of the runner: the repair still wins the merge', async () => {
    const id = 'it-clock';
    const server = await missionWithServerIteration(id);
    const ahead = iso(Date.now() + 60 * 60_000);
    const data = { title: 'Aus der Zukunft', inputs: [], iterations: [], updatedAt: ahead };
    await pushChange(db.pool, { userId: USER, recordId: id, op: 'update', data, fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ahead])) });
    await expectKept(id, [server.id], (r) => assert.equal(r['title'], 'Aus der Zukunft'));
  });

  it('a device whose append reaches the server after a newer push (it lost the merge) gets its iteration back too', async () => {
    const id = 'it-late';
    const server = await missionWithServerIteration(id);
    const newer = iso(Date.now() + 5_000);
    const older = iso(Date.now());
    const a = browserIteration('late-a', iso(Date.now() + 100));
    const b = browserIteration('late-b', iso(Date.now() + 200));
    // device A pushes with a later timestamp first; device B's push (earlier timestamp, arrived later) loses the merge
    for (const [its, ts] of [[[server, a], newer], [[server, b], older]] as const) {
      const data = { inputs: [], iterations: its, updatedAt: ts };
      await pushChange(db.pool, { userId: USER, recordId: id, op: 'update', data, fieldTimestamps: { inputs: ts, iterations: ts, updatedAt: ts } });
    }
    await expectKept(id, [server.id, 'late-a', 'late-b'], () => {});
  });
});
