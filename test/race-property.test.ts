// Property (issue 11): device writes race the daemon's write-backs on the
// same missions for RACE_SECONDS (30 by default): single updates and
// two-mission batches in crossed order (which deadlock inside the trigger
// now and then). Afterwards every snapshot equals the fold of all of its
// mission's rows, and no transient fold error is left unrepaired.
//
// Timestamps are distinct by construction (device ones an hour before or
// after the run, write-backs during it), so the fold's result does not
// depend on the order in which racing transactions took the lock; only a
// lost or misapplied change could make the two differ.
// Starts first (about 43 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { FIELD_MAP, createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';
import { mulberry32 } from '../scripts/lib/prng.js';

const SECONDS = Number(process.env['RACE_SECONDS'] ?? 30);
const SEED = Number(process.env['RACE_SEED'] ?? 20261125);
const MISSIONS = 12;
const WRITERS = 4;

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let devices: pg.Pool;
before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer() }));
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_MIN_RUN_GAP_MS: '0', MANA_AI_CONCURRENCY: '8', MANA_AI_LOG_LEVEL: 'info' });
  devices = new pg.Pool({ connectionString: db.writerUrl, application_name: 'device', max: WRITERS });
  // the database is dropped WITH (FORCE) at the end: a connection it ends must not be an uncaught error
  devices.on('error', () => {});
});
after(async () => {
  await daemon?.stop();
  await devices?.end();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

it(`device writes racing write-backs for ${SECONDS} s: every snapshot equals the fold of all its rows, no error left unrepaired`, async (t) => {
  const start = Date.now();
  const user = (m: number) => `race-user-${m % 3}`;
  const id = (m: number) => `race-${m}`;
  for (let m = 0; m < MISSIONS; m++) {
    await pushChange(db.pool, { userId: user(m), recordId: id(m), op: 'insert', data: webappMission({ id: id(m), title: `Start ${m}`, nextRunAt: iso(start + 500), updatedAt: iso(start - 7_200_000), cadence: { kind: 'interval', everyMinutes: 1 } }) });
  }
  let counter = 0;
  // Unique device timestamps, half an hour or more before the run (they lose
  // to write-backs) or after it (they win): both kinds of race happen.
  const deviceTs = (rnd: () => number) => iso((rnd() < 0.5 ? start - 3_600_000 : start + 3_600_000) + ++counter);
  const update = (c: pg.PoolClient, m: number, rnd: () => number) => {
    const data: Record<string, unknown> = { title: `Titel ${m}.${counter}` };
    if (rnd() < 0.6) data['nextRunAt'] = iso(Date.now() + Math.floor(rnd() * 800)); // due again soon: more write-backs
    if (rnd() < 0.05) data['state'] = rnd() < 0.5 ? 'paused' : 'active';
    const ts = deviceTs(rnd);
    return c.query(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, ${FIELD_MAP}, client_id)
       VALUES ('ai', 'aiMissions', $1, $2, 'update', $3::jsonb, $4::jsonb, 'device')`,
      [id(m), user(m), JSON.stringify(data), JSON.stringify(Object.fromEntries(Object.keys(data).map((k) => [k, ts])))],
    );
  };
  let deviceWrites = 0;
  const writer = async (w: number) => {
    const prng = mulberry32(SEED + w);
    const rnd = () => prng.next();
    while (Date.now() - start < SECONDS * 1000) {
      const c = await devices.connect();
      try {
        // A user's batch: one mission, or two of the same user in either order.
        const a = Math.floor(rnd() * MISSIONS);
        const batch = rnd() < 0.4 ? [a, (a + 3) % MISSIONS] : [a];
        if (rnd() < 0.5) batch.reverse();
        await c.query('BEGIN');
        await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [user(batch[0]!)]);
        for (const m of batch) if (user(m) === user(batch[0]!)) {
          await update(c, m, rnd);
          deviceWrites += 1;
        }
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 20)));
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));

  // Let the daemon finish what is in flight and repair what it was told to.
  await eventually(async () => daemon.reactor!.runsInFlight === 0, 'runs in flight end', 30_000);
  await eventually(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM mana_ai.snapshot_errors WHERE transient AND repaired_at IS NULL`)).rows[0].n === 0, 'every transient fold error repaired', 30_000);

  const writeBacks = (await db.pool.query(`SELECT count(*)::int AS n FROM sync_changes WHERE client_id = 'mana-ai-runner'`)).rows[0].n as number;
  const errors = (await db.pool.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE repaired_at IS NOT NULL)::int AS repaired FROM mana_ai.snapshot_errors`)).rows[0];
  t.diagnostic(`${deviceWrites} device writes, ${writeBacks} write-backs, ${errors.n} fold errors (${errors.repaired} repaired) in ${SECONDS} s`);
  assert.ok(writeBacks >= 20, `the race was real: ${writeBacks} write-backs`);
  assert.equal(errors.n, errors.repaired, 'no fold error left unrepaired');

  const c = await db.pool.connect();
  try {
    for (let m = 0; m < MISSIONS; m++) {
      // One snapshot of the database for both reads: missions stay due
      // every minute, so a run may write back between two statements.
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [user(m)]);
      const folded = (await c.query(`SELECT record, field_ts FROM mana_ai.fold_record($1, 'ai', 'aiMissions', $2)`, [user(m), id(m)])).rows[0];
      const snap = (await c.query(`SELECT record, field_ts FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`, [user(m), id(m)])).rows[0];
      await c.query('COMMIT');
      assert.deepEqual(snap.record, folded.record, `${id(m)}: snapshot record = fold of all rows`);
      assert.deepEqual(snap.field_ts, folded.field_ts, `${id(m)}: field timestamps too`);
    }
  } finally {
    c.release();
  }
});
