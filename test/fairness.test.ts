// Fair runs in a burst, with the real daemon: 200 missions of one user and
// one mission each of 20 other users, all due at the same instant, a
// stand-in LLM that takes 50 ms, default concurrency. Served round-robin
// across users, the latest of the 20 starts within ceil(21 / concurrency)
// rounds of 50 ms plus 100 ms of its due time (issue 13); served in due
// order it would wait behind the 200 (about 50 rounds).
// This file runs alone (scripts/test.ts): it measures time.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadConfig } from '../src/config.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';

const LLM_MS = 50;
const BIG = 200;
const SMALL = 20;

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer(() => ({ content: planAnswer(), delayMs: LLM_MS }));
  daemon = await startTestDaemon(db.daemonUrl, llm.url);
});
after(async () => {
  await daemon?.stop();
  await llm?.close();
  await db?.drop();
});

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms).unref())]);

/** Inserts missions the way mana-sync stores them (one statement, through the snapshot trigger). */
async function insertMissions(prefix: string, users: (g: number) => string, n: number, dueMs: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
     SELECT 'ai', 'aiMissions', $1 || g, $2 || (CASE WHEN $4 THEN g ELSE 0 END), 'insert',
            jsonb_build_object('title', $1 || g, 'state', 'active', 'cadence', jsonb_build_object('kind', 'interval', 'everyMinutes', 60),
                               'nextRunAt', to_char(to_timestamp($3::bigint / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                               'objective', 'burst', 'iterations', '[]'::jsonb, 'updatedAt', '2026-01-01T00:00:00.000Z'),
            '{}'::jsonb, 'test'
       FROM generate_series(1, $5::int) g`,
    [prefix, users(0), dueMs, users(1) !== users(0), n],
  );
}

it('a burst is served round-robin across users: the 20 single missions start within ceil(21 / concurrency) rounds of the big user\'s 200', async (t) => {
  const concurrency = loadConfig({ SYNC_DATABASE_URL: 'postgres://x@y/z', MANA_LLM_URL: 'http://x' }).concurrency;
  // A daemon at 09:00 has been running: its pool holds connections. Warm
  // it with one round of runs first (a cold pool pays a password handshake
  // per new connection inside the burst).
  let warm = 0;
  const warmed = new Promise<void>((resolve) => {
    const onFinished = (e: { missionId?: string }) => {
      if (e.missionId?.startsWith('warm-') && ++warm === concurrency) {
        daemon.reactor!.off('run-finished', onFinished);
        resolve();
      }
    };
    daemon.reactor!.on('run-finished', onFinished);
  });
  await insertMissions('warm-', (g) => `warm-${g}`, concurrency, Date.now());
  await withTimeout(warmed, 30_000, 'warm-up runs finished');
  // due 4 s ahead, so every insert is folded and notified before the burst
  const dueMs = Math.ceil((Date.now() + 4_000) / 1000) * 1000;
  const small = new Map<string, number>();
  let bigStarted = 0;
  const allSmall = new Promise<void>((resolve) => {
    daemon.reactor!.on('run-started', (e: { missionId: string; startedAtMs: number; dueMs: number }) => {
      if (e.missionId.startsWith('big-')) bigStarted += 1;
      if (!e.missionId.startsWith('small-')) return;
      assert.equal(e.dueMs, dueMs);
      small.set(e.missionId, e.startedAtMs);
      if (small.size === SMALL) resolve();
    });
  });
  // the big user's missions first: in insertion (and due) order they would all go first
  await insertMissions('big-', () => 'whale', BIG, dueMs);
  await insertMissions('small-', (g) => `minnow-${g}`, SMALL, dueMs);
  assert.ok(Date.now() < dueMs - 500, 'inserted well before the burst');

  await withTimeout(allSmall, 60_000, 'every single mission started');
  const latest = Math.max(...small.values()) - dueMs;
  const bound = Math.ceil((SMALL + 1) / concurrency) * LLM_MS + 100;
  t.diagnostic(`latest single mission started ${latest} ms after due (bound ${bound} ms, concurrency ${concurrency}); big user's runs started by then: ${bigStarted}`);
  assert.ok(latest <= bound, `the latest single mission started ${latest} ms after its due time (bound ${bound} ms, concurrency ${concurrency}); big user's runs started before it: ${bigStarted}`);
  // in due (= insertion) order the 200 would have gone first
  assert.ok(bigStarted < concurrency, `at most one of the big user's runs per round went first (${bigStarted} of ${BIG} had started)`);
});
