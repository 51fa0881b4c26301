// A run's planning slot ends with its plan (issue 30): MANA_AI_CONCURRENCY
// bounds the runs between claim and answer, the LLM's load; a planned run
// writes back outside its slot, so a write-back that waits (here: a
// device's transaction holds the snapshot row) never keeps the next due
// mission from the LLM. The waiting write-back still lands, once, and the
// run ends only then, with its answer charged.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, webappMission } from './harness/changes.js';
import { promptMentions, planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { runOf, startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
  // the longest write-back wait there is: this test holds the row while B is planned
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_CONCURRENCY: '1', MANA_AI_WRITE_BACK_LOCK_WAIT_MS: '30000' });
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const iso = (ms: number) => new Date(ms).toISOString();

describe('planning slots (issue 30)', () => {
  it('a run whose write-back waits for a row lock has given its only slot to the next due mission', async () => {
    // A's answer is held until A's snapshot row is locked by another transaction
    let releaseA!: () => void;
    const aReleased = new Promise<void>((r) => (releaseA = r));
    let askedA!: () => void;
    const aAsked = new Promise<void>((r) => (askedA = r));
    llm.setScript(async (req) => {
      if (promptMentions(req, 'Erste')) {
        askedA();
        await aReleased;
      }
      return { content: planAnswer('geplant'), usage: { total_tokens: 42 } };
    });
    await pushChange(db.pool, { userId: 'u-slot-a', recordId: 'slot-a', op: 'insert', data: webappMission({ id: 'slot-a', title: 'Erste', nextRunAt: iso(Date.now() - 1000) }) });
    await aAsked;
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM mana_ai.mission_snapshots WHERE mission_id = 'slot-a' FOR UPDATE`);
      releaseA();
      // A's write-back now waits for the row (the batch took it NOWAIT, the general path waits); its run has not ended
      await eventually(async () => (await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%lock_snapshot_for_write_back%'`)).rows[0].n === 1,
        "A's write-back waits for the row lock");
      await pushChange(db.pool, { userId: 'u-slot-b', recordId: 'slot-b', op: 'insert', data: webappMission({ id: 'slot-b', title: 'Zweite', nextRunAt: iso(Date.now() - 1000) }) });
      await eventually(() => llm.requests.some((r) => promptMentions(r, 'Zweite')), 'B reaches the LLM while A writes back');
      assert.equal(daemon.events.some((e) => e.missionId === 'slot-a'), false, 'A has not ended: its write-back still waits');
      const a = (await db.pool.query(`SELECT status FROM mana_ai.mission_runs WHERE mission_id = 'slot-a'`)).rows[0];
      assert.equal(a.status, 'running');
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    const evA = await runOf(daemon, 'slot-a', 20_000);
    const evB = await runOf(daemon, 'slot-b', 20_000);
    assert.equal(evA.outcome, 'planned');
    assert.equal(evB.outcome, 'planned');
    const rows = (await db.pool.query(`SELECT mission_id, tokens_used FROM mana_ai.token_usage WHERE mission_id IN ('slot-a', 'slot-b') ORDER BY mission_id`)).rows;
    assert.deepEqual(rows, [{ mission_id: 'slot-a', tokens_used: 42 }, { mission_id: 'slot-b', tokens_used: 42 }], 'each answer charged once, before its run ended');
    const iterations = (await db.pool.query(`SELECT mission_id, jsonb_array_length(record -> 'iterations') AS n FROM mana_ai.mission_snapshots WHERE mission_id IN ('slot-a', 'slot-b') ORDER BY mission_id`)).rows;
    assert.deepEqual(iterations, [{ mission_id: 'slot-a', n: 1 }, { mission_id: 'slot-b', n: 1 }]);
  });
});
