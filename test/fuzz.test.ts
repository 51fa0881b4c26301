// Hostile input: at least 10,000 generated mission change rows (wrong types
// everywhere, huge strings and arrays, deep nesting, NaN and negative
// intervals, cron that never or always matches, dates in year 275760 and
// before 1970, duplicate and unicode ids) written through mana-sync's role
// while the daemon runs, with 20 valid missions among them. No insert
// fails, the daemon stays healthy, no mission runs twice within a minute,
// and every valid mission is planned. Fixed seed; FUZZ_RECORDS and
// FUZZ_SEED make a larger or different run.
// Starts first (about 38 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { mulberry32 } from '../scripts/lib/prng.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { webappMission } from './harness/changes.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261124);
const N = Number(process.env['FUZZ_RECORDS'] ?? 10_000);
const VALID = 20;

let db: TestDb;
let llm: LlmServer;
let daemon: TestDaemon;
let writer: pg.Pool;

before(async () => {
  db = await createTestDatabase();
  writer = new pg.Pool({ connectionString: db.writerUrl, max: 2 });
  llm = await startLlmServer();
  daemon = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_LOG_LEVEL: 'info', MANA_AI_CONCURRENCY: '8' });
});
after(async () => {
  await daemon?.stop();
  await writer?.end();
  await llm?.close();
  await db?.drop();
});

const r = mulberry32(SEED);
// Characters Postgres accepts in text and jsonb (no NUL, no lone surrogates): mana-sync's own limits.
const ALPHABET = ['a', 'Z', '0', ' ', '-', 'ä', 'ß', '漢', '字', '🚀', '👩‍👩‍👧', 'ش', 'ע', '\u200b', '\n', '"', '\\', "'", '{', '}', 'Ω'];
const str = (max: number) => Array.from({ length: r.int(max) + 1 }, () => r.pick(ALPHABET)).join('');
const iso = (ms: number) => new Date(ms).toISOString();
const now = Date.now();

function deep(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = r.next() < 0.5 ? [v] : { k: v };
  return v;
}

function anyValue(level = 0): unknown {
  switch (r.int(level > 2 ? 7 : 10)) {
    case 0: return null;
    case 1: return r.next() < 0.5;
    case 2: return r.pick([0, -1, 1.5, -1e308, 1e308, 2 ** 53 + 1, -0]);
    case 3: return str(20);
    case 4: return r.pick(['NaN', 'Infinity', '-Infinity', '', ' ', 'null', 'undefined']);
    case 5: return 'x'.repeat(r.next() < 0.01 ? 1_000_000 : r.next() < 0.1 ? 100_000 : 1000);
    case 6: return r.pick([iso(now - 3_600_000), '1969-07-20T20:17:40.000Z', '0001-01-01T00:00:00.000Z', '275760-09-13T00:00:00.000Z', '+275760-09-13T00:00:00.000Z', 'not a date', '2026-02-30T25:61:00Z']);
    case 7: return Array.from({ length: r.next() < 0.05 ? 10_000 : r.pick([0, 1, 3, 100]) }, () => r.int(10));
    case 8: return deep(r.next() < 0.05 ? 1000 : r.pick([10, 100]));
    default: return Object.fromEntries(Array.from({ length: r.int(4) }, () => [str(8), anyValue(level + 1)]));
  }
}

function cadence(): unknown {
  return r.pick<unknown>([
    { kind: 'interval', everyMinutes: r.pick([NaN, -5, 0, 0.001, 1e12, '30', null]) },
    { kind: 'interval', everyMinutes: 1 },
    { kind: 'daily', atHour: r.pick([25, -1, 9, 'neun', 1.5]), atMinute: r.pick([0, 60, NaN]) },
    { kind: 'weekly', dayOfWeek: r.pick([7, -1, 3, '1']), atHour: 9 },
    { kind: 'cron', expression: r.pick(['* * * * *', '0 0 31 2 *', '61 * * * *', '', '* * * * * * *', 'every day', '0 9 * * 1-5']) },
    { kind: 'manual' },
    { kind: r.pick(['fortnightly', '', 42]) },
    anyValue(),
  ]);
}

const USERS = Array.from({ length: 40 }, (_, i) => r.pick([`u${i}`, `ü-${i}-🚀`, `${'long'.repeat(100)}${i}`, `שלום-${i}`, `a'b"c\\${i}`]));
const IDS = Array.from({ length: 1500 }, (_, i) => r.pick([`m${i}`, `${i}`, `漢字-${i}`, `${'x'.repeat(900)}${i}`, ' ', `id with spaces ${i}`, '🚀']));

function fuzzRow(): { userId: string; recordId: string; op: string; data: unknown; fts: unknown } {
  const op = r.pick(['insert', 'insert', 'update', 'update', 'delete']);
  let data: unknown;
  const shape = r.int(10);
  if (shape === 0) data = anyValue();
  else if (shape === 1) data = null;
  else {
    const m: Record<string, unknown> = {};
    for (const k of ['id', 'title', 'objective', 'conceptMarkdown', 'inputs', 'cadence', 'state', 'nextRunAt', 'iterations', 'deletedAt', 'updatedAt', 'createdAt', 'grant']) {
      if (r.next() < 0.35) continue;
      m[k] =
        k === 'cadence' ? cadence()
        : k === 'state' ? r.pick(['active', 'active', 'paused', 'done', 'archived', 'ACTIVE', 1, null])
        : k === 'nextRunAt' ? r.pick<unknown>([iso(now - r.int(86_400_000)), iso(now + r.int(86_400_000)), '275760-09-13T00:00:00.000Z', '1969-12-31T23:59:59.999Z', 'soon', 12345, null])
        : anyValue();
    }
    data = m;
  }
  const fts = r.next() < 0.7 ? { title: r.pick<unknown>([iso(now), 'not-a-time', 5, null]) } : anyValue();
  return { userId: r.pick(USERS), recordId: r.pick(IDS), op, data, fts };
}

it(`${N} hostile change rows: every insert commits, the daemon stays healthy, no hot loop, the valid missions are planned`, async () => {
  const rows = Array.from({ length: N }, fuzzRow);
  // The valid missions sit in the middle of the stream, due a few seconds ahead.
  const validAt = Math.floor(N / 2);
  const dueMs = Date.now() + 8_000;
  const valid = Array.from({ length: VALID }, (_, i) => ({
    userId: `valid-user-${i}`, recordId: `valid-${i}`, op: 'insert',
    data: webappMission({ id: `valid-${i}`, title: `valid-${i}`, nextRunAt: iso(dueMs + i * 50) }), fts: {},
  }));
  rows.splice(validAt, 0, ...valid);

  // As mana-sync writes: per user, a transaction scoped to that user, batched.
  let inserted = 0;
  const client = await writer.connect();
  try {
    for (let i = 0; i < rows.length; ) {
      const user = rows[i]!.userId;
      const batch: typeof rows = [];
      while (i < rows.length && rows[i]!.userId === user && batch.length < 50) batch.push(rows[i++]!);
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
      const params: unknown[] = [];
      const values = batch.map((b, j) => {
        params.push(b.recordId, user, b.op, b.data === undefined ? null : JSON.stringify(b.data), JSON.stringify(b.fts ?? null));
        const o = j * 5;
        return `('ai', 'aiMissions', $${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}::jsonb, $${o + 5}::jsonb, 'fuzz')`;
      });
      const res = await client.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id) VALUES ${values.join(', ')}`, params);
      await client.query('COMMIT');
      inserted += res.rowCount ?? 0;
    }
  } finally {
    client.release();
  }
  assert.equal(inserted, rows.length, 'every insert committed');
  const insertSeconds = ((Date.now() - (dueMs - 8_000)) / 1000).toFixed(1);
  const counted = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_changes WHERE client_id = 'fuzz'`);
  assert.equal(counted.rows[0]!.n, rows.length);

  const planned = await Promise.all(valid.map((v) => daemon.waitForRun((e) => e.missionId === v.recordId && e.userId === v.userId)));
  assert.ok(planned.every((e) => e.outcome === 'planned'), 'every valid mission planned');
  for (const v of valid) {
    const n = daemon.events.filter((e) => e.missionId === v.recordId && e.userId === v.userId).length;
    assert.equal(n, 1, `${v.recordId} planned once`);
  }

  const health = await fetch(`http://127.0.0.1:${daemon.port}/health`);
  assert.equal(health.status, 200, 'still healthy');
  const hot = await db.pool.query(
    `SELECT mission_id FROM (
       SELECT mission_id, user_id, started_at - lag(started_at) OVER (PARTITION BY user_id, mission_id ORDER BY started_at) AS gap
         FROM mana_ai.mission_runs) x
      WHERE gap < interval '60 seconds'`,
  );
  assert.equal(hot.rowCount, 0, 'no mission ran twice within a minute');
  const errors = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.snapshot_errors`);
  const runs = await db.pool.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM mana_ai.mission_runs GROUP BY status ORDER BY status`);
  console.log(`# fuzz seed ${SEED}: ${rows.length} rows inserted in ${insertSeconds} s, ${errors.rows[0]!.n} snapshot errors recorded, runs ${runs.rows.map((x) => `${x.status} ${x.n}`).join(', ')}`);
  assert.ok(!daemon.logs.some((l) => l.includes('unhandled')), 'no unhandled rejection');
});
