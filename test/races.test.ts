// Races and poison input (issue 11), each with its interleaving forced:
// a device write into a write-back that holds the mission's lock; a user who
// moves, pauses or finishes a mission while its run is in flight; a record
// with more rows than the old resolver read; a cadence whose next run
// cannot be represented; a write-back that fails; two devices' batches that
// deadlock inside the trigger. The daemon runs as the least-privileged
// runtime role, as in production.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { FIELD_MAP, RUNTIME_ROLE, createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { holdAnswers, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let devices: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
  devices = new pg.Pool({ connectionString: db.writerUrl, application_name: 'device', max: 4 });
});
after(async () => {
  await daemon?.stop();
  await devices?.end();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

async function snapshot(missionId: string) {
  const { rows } = await db.pool.query(`SELECT sid, record, state, next_run_at, version FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [missionId]);
  return rows[0];
}

/** The fold of all of a mission's rows in log order, by the trigger's own fold function. */
async function foldOfAllRows(userId: string, missionId: string) {
  const c = await db.pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [userId]);
    const { rows } = await c.query(`SELECT record, field_ts FROM mana_ai.fold_record($1, 'ai', 'aiMissions', $2)`, [userId, missionId]);
    await c.query('COMMIT');
    return rows[0];
  } finally {
    c.release();
  }
}

const waitingOnLock = async (app: string) =>
  Number((await db.pool.query(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`, [app])).rows[0].count);

describe('races', () => {
  it('a device write that arrives while a write-back holds the mission waits for it and is folded on top: no deadlock, no lost change', async () => {
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    // Hold the run's row while the LLM answers, so the write-back, which
    // locks the snapshot first, stops right after taking that lock.
    llm.setScript(async (req) => {
      if (promptMentions(req, 'Rennen')) {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM mana_ai.mission_runs WHERE mission_id = 'race' FOR UPDATE`);
      }
      return { content: '```json\n{"summary":"ok","steps":[]}\n```' };
    });
    const t0 = Date.now();
    await pushChange(db.pool, { userId: 'ur', recordId: 'race', op: 'insert', data: webappMission({ id: 'race', title: 'Rennen', nextRunAt: iso(t0 + 200), updatedAt: iso(t0 - 60_000) }) });
    await eventually(async () => (await waitingOnLock('mana-ai')) === 1, 'the write-back waits on the held run row, holding the snapshot lock');

    // The device renames the mission now: its trigger needs the snapshot lock.
    const renamed = pushChange(devices, { userId: 'ur', recordId: 'race', op: 'update', data: { title: 'Umbenannt' }, fieldTimestamps: { title: iso(Date.now()) } });
    await eventually(async () => (await waitingOnLock('device')) === 1, 'the device write waits for the write-back');
    await blocker.query('ROLLBACK');
    await blocker.end();

    await renamed;
    const ev = await daemon.waitForRun((e) => e.missionId === 'race');
    assert.equal(ev.outcome, 'planned');
    const snap = await snapshot('race');
    assert.equal(snap.record.title, 'Umbenannt', 'the device’s change reached the snapshot');
    assert.equal(snap.record.iterations.length, 1, 'and so did the iteration');
    const errors = await db.pool.query(`SELECT sqlstate, error FROM mana_ai.snapshot_errors WHERE record_id = 'race'`);
    assert.deepEqual(errors.rows, [], 'no fold error (the old lock order deadlocked here: 40P01)');
    const folded = await foldOfAllRows('ur', 'race');
    assert.deepEqual(snap.record, folded.record, 'snapshot = fold of all rows');
    llm.setScript(() => ({ content: '```json\n{"summary":"ok","steps":[]}\n```' }));
  });

  for (const change of [
    { name: 'moved', data: (t: number) => ({ nextRunAt: iso(t + 3_600_000) }) },
    { name: 'paused', data: () => ({ state: 'paused' }) },
    { name: 'done', data: () => ({ state: 'done' }) },
  ]) {
    it(`a user who ${change.name === 'moved' ? 'moves' : change.name === 'paused' ? 'pauses' : 'finishes'} the mission during its run keeps that: the iteration is appended, the schedule and state are the user's`, async () => {
      const id = `during-${change.name}`;
      const title = `Während ${change.name}`;
      const held = holdAnswers(llm, (req) => promptMentions(req, title));
      const t0 = Date.now();
      const due = t0 + 200;
      await pushChange(db.pool, { userId: 'ud', recordId: id, op: 'insert', data: webappMission({ id, title, nextRunAt: iso(due), updatedAt: iso(t0 - 60_000) }) });
      await held.asked;
      const userData = change.data(t0) as Record<string, unknown>;
      const userTs = iso(Date.now());
      await pushChange(devices, { userId: 'ud', recordId: id, op: 'update', data: userData, fieldTimestamps: Object.fromEntries(Object.keys(userData).map((k) => [k, userTs])) });
      held.release();
      const ev = await daemon.waitForRun((e) => e.missionId === id);
      assert.equal(ev.outcome, 'planned');

      const snap = await snapshot(id);
      assert.equal(snap.record.iterations.length, 1, 'the iteration is there');
      for (const [k, v] of Object.entries(userData)) assert.deepEqual(snap.record[k], v, `${k} is the user's`);
      if (change.name !== 'moved') assert.equal(snap.record.nextRunAt, iso(due), 'nextRunAt untouched');
      assert.equal(snap.state, change.name === 'moved' ? 'active' : change.name);
      const { rows } = await db.pool.query(`SELECT data FROM sync_changes WHERE client_id = 'mana-ai-runner' AND record_id = $1`, [id]);
      assert.deepEqual(Object.keys(rows[0].data).sort(), ['iterations', 'updatedAt'], 'the runner wrote no nextRunAt');
      assert.ok(daemon.logs.some((l) => l.includes('the user changed the schedule during the run') && l.includes(id)));
      llm.setScript(() => ({ content: '```json\n{"summary":"ok","steps":[]}\n```' }));
    });
  }
});

describe('poison input', () => {
  it('a goal with 5,201 rows reaches the prompt with its newest title (every row folded, in log order)', async () => {
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    await pushChange(db.pool, { userId: 'ug', recordId: 'g-big', op: 'insert', appId: 'companion', tableName: 'goals', data: { id: 'g-big', title: 'Ziel 0', currentValue: 1, target: { value: 10, period: 'week' }, updatedAt: iso(t0) } });
    await db.pool.query(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${FIELD_MAP}, client_id, created_at)
       SELECT 'companion', 'goals', 'g-big', 'ug', 'update', jsonb_build_object('title', 'Ziel ' || g),
              jsonb_build_object('title', to_char(timestamp '2026-01-01' + g * interval '1 second', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
              'device', now() + g * interval '1 millisecond'
         FROM generate_series(1, 5200) g`,
    );
    const title = 'Viele Zeilen';
    await pushChange(db.pool, { userId: 'ug', recordId: 'm-big', op: 'insert', data: webappMission({ id: 'm-big', title, inputs: [{ module: 'goals', table: 'goals', id: 'g-big' }], nextRunAt: iso(Date.now() + 100) }) });
    await daemon.waitForRun((e) => e.missionId === 'm-big');
    const prompt = llm.requests.filter((r) => promptMentions(r, title)).at(-1)!.body.messages.map((m) => m.content).join('\n');
    assert.match(prompt, /Ziel 5200; progress: 1 \/ 10 \(week\)/);
    assert.doesNotMatch(prompt, /Ziel 4999;/);
  });

  it('a cadence whose next run is past year 9999 means no next run: the run ends done, once, and the LLM is asked once', async () => {
    const title = 'Unendlich';
    await pushChange(db.pool, { userId: 'uf', recordId: 'forever', op: 'insert', data: webappMission({ id: 'forever', title, cadence: { kind: 'interval', everyMinutes: 1e12 }, nextRunAt: iso(Date.now() + 100) }) });
    const ev = await daemon.waitForRun((e) => e.missionId === 'forever');
    assert.equal(ev.outcome, 'planned');
    assert.equal(ev.nextRunAtMs, null);
    const snap = await snapshot('forever');
    assert.equal(snap.record.nextRunAt, null);
    assert.equal(snap.next_run_at, null, 'not scheduled again');
    const runs = await db.pool.query(`SELECT status, attempts FROM mana_ai.mission_runs WHERE mission_id = 'forever'`);
    assert.deepEqual(runs.rows, [{ status: 'done', attempts: 1 }]);
    assert.notEqual(await daemon.reactor!.enqueue(ev.sid, ev.dueMs), 'claimed', 'that due time is never run again');
    assert.equal(llm.requests.filter((r) => promptMentions(r, title)).length, 1);
  });
  // A write-back that fails outside the mission (a revoked right, a lost
  // connection, a lock timeout) gives its claim back: test/liveness.test.ts.
});

describe('transient fold errors', () => {
  it('two device batches that deadlock inside the trigger: both commit, the error is recorded as transient, and the daemon repairs the snapshot at once', async () => {
    const t0 = Date.now();
    for (const id of ['dl-a', 'dl-b']) {
      await pushChange(db.pool, { userId: 'udl', recordId: id, op: 'insert', data: webappMission({ id, title: id, nextRunAt: iso(t0 + 3_600_000), updatedAt: iso(t0 - 60_000) }) });
    }
    const repaired = new Promise<{ id: number; outcome: string }>((resolve) => daemon.reactor!.on('snapshot-repaired', resolve));
    const [c1, c2] = [await devices.connect(), await devices.connect()];
    const update = (c: pg.PoolClient, id: string, title: string) =>
      c.query(
        `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${FIELD_MAP}, client_id)
         VALUES ('ai', 'aiMissions', $1, 'udl', 'update', jsonb_build_object('title', $2::text), jsonb_build_object('title', $3::text), 'device')`,
        [id, title, iso(Date.now())],
      );
    try {
      for (const c of [c1, c2]) {
        await c.query('BEGIN');
        await c.query(`SELECT set_config('app.current_user_id', 'udl', true)`);
      }
      await update(c1, 'dl-a', 'A von Gerät 1');
      await update(c2, 'dl-b', 'B von Gerät 2');
      const crossed = update(c1, 'dl-b', 'B von Gerät 1'); // waits for device 2
      await eventually(async () => (await waitingOnLock('device')) === 1, 'device 1 waits for device 2');
      const closing = update(c2, 'dl-a', 'A von Gerät 2'); // closes the cycle: one of the two is the deadlock victim
      // The victim's insert returns (its trigger caught the deadlock); the
      // other still waits for the victim's locks, so the victim commits first.
      const victim = await Promise.race([crossed.then(() => c1), closing.then(() => c2)]);
      await victim.query('COMMIT');
      await Promise.all([crossed, closing]);
      await (victim === c1 ? c2 : c1).query('COMMIT');
    } finally {
      c1.release();
      c2.release();
    }
    const errors = await db.pool.query(`SELECT id::int AS id, sqlstate, transient FROM mana_ai.snapshot_errors WHERE user_id = 'udl'`);
    assert.equal(errors.rows.length, 1, 'the deadlock was caught in the trigger, both inserts committed');
    assert.deepEqual({ sqlstate: errors.rows[0].sqlstate, transient: errors.rows[0].transient }, { sqlstate: '40P01', transient: true });
    const r = await repaired;
    assert.deepEqual(r, { id: errors.rows[0].id, outcome: 'repaired' });
    for (const id of ['dl-a', 'dl-b']) {
      assert.deepEqual((await snapshot(id)).record, (await foldOfAllRows('udl', id)).record, `${id}: snapshot = fold of all rows`);
    }
    const after = await db.pool.query(`SELECT repaired_at FROM mana_ai.snapshot_errors WHERE user_id = 'udl'`);
    assert.ok(after.rows[0].repaired_at instanceof Date, 'marked repaired');
    const metrics = await daemon.metrics.registry.getSingleMetricAsString('mana_ai_snapshot_repairs_total');
    assert.match(metrics, /outcome="repaired",service="mana-ai"\} 1/);
  });
});

describe('least privilege', () => {
  it('the daemon’s role is no superuser, cannot change the schema, and outside a user scope sees none of that user’s rows', async () => {
    const c = new pg.Client({ connectionString: db.daemonUrl });
    await c.connect();
    try {
      const role = await c.query(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`);
      assert.deepEqual(role.rows[0], { rolsuper: false, rolbypassrls: false });
      const owned = await db.pool.query(`SELECT count(*)::int AS n FROM sync_changes WHERE user_id = 'ur'`);
      assert.ok(owned.rows[0].n >= 2, 'the superuser sees the user’s rows');
      const unscoped = await c.query(`SELECT count(*)::int AS n FROM sync_changes WHERE user_id = 'ur'`);
      assert.equal(unscoped.rows[0].n, 0, 'outside a user scope: none');
      await c.query('BEGIN');
      await c.query(`SELECT set_config('app.current_user_id', 'ud', true)`);
      const other = await c.query(`SELECT count(*)::int AS n FROM sync_changes WHERE user_id = 'ur'`);
      assert.equal(other.rows[0].n, 0, 'scoped to another user: none');
      await c.query('ROLLBACK');
      await assert.rejects(c.query(`CREATE TABLE mana_ai.intruder (x int)`), /permission denied/);
      await assert.rejects(c.query(`UPDATE mana_ai.mission_snapshots SET state = 'active'`), /permission denied/);
    } finally {
      await c.end();
    }
  });
});
