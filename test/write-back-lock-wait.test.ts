// A write-back's wait for its mission's snapshot row is bounded, and it is
// the run's own wait. A device's push that holds the row (a transaction of
// mana-sync's that does not commit) must neither hold up every other run's
// write-back (the batcher sends one batch at a time, so a batch that waited
// for the busy row stalled all runs behind it) nor keep the run past its
// lease (then another daemon would ask the LLM again). Past
// MANA_AI_WRITE_BACK_LOCK_WAIT_MS the run gives its claim back with its
// plan kept and writes that plan once the row is free: the LLM is asked
// once. The interleaving is forced: both answers held, the row locked
// before the first is released.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type pg from 'pg';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { planAnswer, promptMentions, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

const iso = (ms: number) => new Date(ms).toISOString();

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon | undefined;
let holder: pg.PoolClient | undefined;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
afterEach(async () => {
  await holder?.query('ROLLBACK').catch(() => {});
  holder?.release();
  holder = undefined;
  await daemon?.stop();
  daemon = undefined;
});
after(async () => {
  await llm?.close();
  await db?.drop();
});

const runRow = async (missionId: string) =>
  (await db.pool.query(`SELECT status, attempts, error, pending_plan IS NOT NULL AS kept FROM mana_ai.mission_runs WHERE mission_id = $1`, [missionId])).rows[0] as
    { status: string; attempts: number; error: string | null; kept: boolean } | undefined;
const asked = (title: string) => llm.requests.filter((r) => promptMentions(r, title)).length;
const iterations = async (missionId: string) =>
  (await db.pool.query(`SELECT jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id = $1`, [missionId])).rows[0].n as number;

describe('the write-back waits for a busy snapshot row boundedly, and alone (issue 30)', () => {
  it('a row held by a device\'s push holds up no other run, and its own run writes its kept plan once the row is free', async () => {
    daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WRITE_BACK_LOCK_WAIT_MS: '1500' });
    // both answers held until the test lets them go
    const gates = new Map<string, { asked: Promise<void>; ask: () => void; go: Promise<void>; release: () => void }>();
    for (const title of ['Gesperrt', 'Daneben']) {
      let ask!: () => void;
      let release!: () => void;
      const askedP = new Promise<void>((r) => (ask = r));
      const go = new Promise<void>((r) => (release = r));
      gates.set(title, { asked: askedP, ask, go, release });
    }
    llm.setScript(async (req) => {
      for (const [title, g] of gates) {
        if (promptMentions(req, title)) {
          g.ask();
          await g.go;
          return { content: planAnswer(title) };
        }
      }
      return { content: planAnswer() };
    });
    await pushChange(db.pool, { userId: 'u-lock-a', recordId: 'lock-a', op: 'insert', data: webappMission({ id: 'lock-a', title: 'Gesperrt', nextRunAt: iso(Date.now() - 1000) }) });
    await pushChange(db.pool, { userId: 'u-lock-b', recordId: 'lock-b', op: 'insert', data: webappMission({ id: 'lock-b', title: 'Daneben', nextRunAt: iso(Date.now() - 1000) }) });
    await gates.get('Gesperrt')!.asked;
    await gates.get('Daneben')!.asked;

    // a device's push on A that does not commit: the trigger's own lock on A's snapshot
    holder = await db.pool.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM mana_ai.mission_snapshots WHERE mission_id = 'lock-a' FOR UPDATE`);

    const givenBack = runOf(daemon, 'lock-a', 20_000, 'retry');
    gates.get('Gesperrt')!.release();
    // A's write-back now waits for the row
    await eventually(async () => (await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND usename <> current_user`)).rows[0].n >= 1,
      "A's write-back waits for the row", 10_000);

    // B's write-back is not held up by A's busy row
    const b = runOf(daemon, 'lock-b', 10_000, 'planned');
    gates.get('Daneben')!.release();
    assert.equal((await b).outcome, 'planned');
    assert.equal(await iterations('lock-b'), 1);

    // A waits no longer than the bound: its claim goes back with the plan kept, the attempt counted as the database's
    await givenBack;
    const a1 = await runRow('lock-a');
    assert.equal(a1?.status, 'released');
    assert.equal(a1?.kept, true, 'the plan is kept with the run');
    assert.match(a1?.error ?? '', /lock/i);
    assert.match(await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text(), /mana_ai_run_retries_total\{reason="lock-timeout"[^}]*\} [1-9]/);
    assert.equal(await iterations('lock-a'), 0, 'nothing of A written while the row is held');

    // the device's push commits; the retry writes the kept plan without asking again
    await holder.query('COMMIT');
    holder.release();
    holder = undefined;
    const a = await runOf(daemon, 'lock-a', 30_000, 'planned');
    assert.equal(a.iteration?.summary, 'Gesperrt');
    assert.equal(asked('Gesperrt'), 1, 'the LLM was asked once for A');
    assert.equal(await iterations('lock-a'), 1);
    assert.equal((await runRow('lock-a'))?.status, 'done');
  });
});
