// The cold start's load as binary COPY (issue 30): the pure reader
// (src/db/sql/schedule-copy-reader.ts) on hand-built streams cut at every
// byte, and loadSchedule (src/db/sql/load-schedule.ts) against the real
// database as the runtime role: the same missions and due times as
// mana_ai.schedulable_due_ms() gives, only the partitions asked for, a
// caller that stops early leaves no connection inside a COPY, and a
// backend killed or a connection cut mid-stream is an error, never a short
// schedule. Also in ranges of blocks, one COPY each.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadSchedule } from '../src/db/sql/load-schedule.js';
import { ScheduleCopyError, ScheduleCopyReader } from '../src/db/sql/schedule-copy-reader.js';
import type { SchedulePage } from '../src/db/sql/schedule-page.js';
import { createPool } from '../src/db/pool.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { eventually } from './harness/wait.js';

type Row = { sid: number; version: number; partition: number; dueMs: number; agentRef: number; userRef: number };
const PG_EPOCH_MS = 946_684_800_000;

/** A binary COPY stream of the load's six columns, as PostgreSQL writes it; `us` overrides a row's timestamp. */
function copyStream(rows: (Row & { us?: bigint })[], o: { extension?: Buffer } = {}): Buffer {
  const ext = o.extension ?? Buffer.alloc(0);
  const head = Buffer.alloc(19);
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1').copy(head);
  head.writeUInt32BE(0, 11);
  head.writeUInt32BE(ext.length, 15);
  const body = rows.map((r) => {
    const b = Buffer.alloc(70);
    b.writeInt16BE(6, 0);
    let at = 2;
    const int8 = (v: bigint) => { b.writeInt32BE(8, at); b.writeBigInt64BE(v, at + 4); at += 12; };
    int8(BigInt(r.sid));
    int8(BigInt(r.version));
    b.writeInt32BE(4, at); b.writeInt32BE(r.partition, at + 4); at += 8;
    int8(r.us ?? BigInt(r.dueMs - PG_EPOCH_MS) * 1000n);
    int8(BigInt(r.agentRef));
    int8(BigInt(r.userRef));
    return b;
  });
  return Buffer.concat([head, ext, ...body, Buffer.from([0xff, 0xff])]);
}

const rowsOf = (pages: SchedulePage[]): Row[] => pages.flatMap((p) => Array.from({ length: p.length }, (_, i) => ({
  sid: p.sid(i), version: p.version(i), partition: p.partition(i), dueMs: p.dueMs(i), agentRef: p.agentRef(i), userRef: p.userRef(i),
})));

function readAll(chunks: Buffer[], pageSize: number): SchedulePage[] {
  const reader = new ScheduleCopyReader(pageSize);
  const pages = chunks.flatMap((c) => reader.push(c));
  const last = reader.end();
  return last ? [...pages, last] : pages;
}

const sample: Row[] = [
  { sid: 1, version: 1, partition: 0, dueMs: Date.parse('2026-12-07T09:00:00.123Z'), agentRef: -1, userRef: 7 },
  { sid: 2 ** 40 + 5, version: 2 ** 33, partition: 63, dueMs: Date.parse('1999-12-31T23:59:59.999Z'), agentRef: 2 ** 53 - 1, userRef: -(2 ** 52) },
  { sid: 9_007_199_254_740_000, version: 3, partition: 17, dueMs: 253_402_300_799_999, agentRef: 12, userRef: 0 },
  { sid: 4, version: 9, partition: 5, dueMs: 0, agentRef: -1, userRef: 1 },
  { sid: 5, version: 2, partition: 6, dueMs: -86_400_001, agentRef: 3, userRef: 2 },
];

describe('the schedule COPY reader', () => {
  it('reads every row exactly, whatever byte the chunks are cut at, into pages of the size asked for', () => {
    const stream = copyStream(sample, { extension: Buffer.from('ext') });
    for (let cut = 0; cut <= stream.length; cut++) {
      for (const pageSize of [1, 2, 10]) {
        const pages = readAll([stream.subarray(0, cut), stream.subarray(cut)], pageSize);
        assert.deepEqual(rowsOf(pages), sample, `cut at ${cut}, pages of ${pageSize}`);
        assert.deepEqual(pages.map((p) => p.length), pageSize === 10 ? [5] : pageSize === 2 ? [2, 2, 1] : [1, 1, 1, 1, 1]);
      }
    }
    // and one byte at a time
    assert.deepEqual(rowsOf(readAll([...stream].map((b) => Buffer.from([b])), 3)), sample);
  });

  it('floors sub-millisecond timestamps as floor(extract(epoch) * 1000) does, before 1970 and 2000 too', () => {
    const base = { sid: 1, version: 1, partition: 0, agentRef: -1, userRef: 1, dueMs: 0 };
    const cases: [bigint, number][] = [
      [1_999n, PG_EPOCH_MS + 1], [-1n, PG_EPOCH_MS - 1], [-1_001n, PG_EPOCH_MS - 2], [0n, PG_EPOCH_MS],
      [-946_684_800_000_001n, -1], // 1969-12-31T23:59:59.999999
    ];
    const got = rowsOf(readAll([copyStream(cases.map(([us]) => ({ ...base, us })))], 10)).map((r) => r.dueMs);
    assert.deepEqual(got, cases.map(([, ms]) => ms));
  });

  it('answers far-off due times for ±infinity instead of failing the load', () => {
    const base = { sid: 1, version: 1, partition: 0, agentRef: -1, userRef: 1, dueMs: 0 };
    const [pos, neg] = rowsOf(readAll([copyStream([{ ...base, us: 2n ** 63n - 1n }, { ...base, us: -(2n ** 63n) }])], 10));
    assert.ok(pos!.dueMs > Date.parse('+100000-01-01T00:00:00Z'));
    assert.ok(neg!.dueMs < Date.parse('-100000-01-01T00:00:00Z'));
  });

  it('refuses what is not the six columns, a stream cut short, and data after the trailer', () => {
    const good = copyStream(sample.slice(0, 1));
    const notCopy = Buffer.from(good);
    notCopy[0] = 0x51;
    assert.throws(() => readAll([notCopy], 10), ScheduleCopyError);
    const fiveColumns = Buffer.from(good);
    fiveColumns.writeInt16BE(5, 19);
    assert.throws(() => readAll([fiveColumns], 10), /a row of 5 columns/);
    const nullAgent = Buffer.from(good);
    nullAgent.writeInt32BE(-1, 19 + 2 + 44);
    assert.throws(() => readAll([nullAgent], 10), /a column of -1 bytes/);
    assert.throws(() => readAll([good.subarray(0, good.length - 2)], 10), /without its trailer/);
    assert.throws(() => readAll([good.subarray(0, good.length - 7)], 10), /inside a row/);
    assert.throws(() => readAll([good, Buffer.from([0])], 10), /after the COPY trailer/);
  });
});

describe('loadSchedule as binary COPY', () => {
  let db: TestDb;
  let pool: pg.Pool;
  before(async () => {
    db = await createTestDatabase();
    // the runtime role, as the daemon loads: no superuser, no BYPASSRLS
    pool = createPool({ connectionString: db.daemonUrl, max: 2 });
    // 500 snapshots written directly (the trigger's work is not what is tested here), over 20 users and so
    // several partitions; some inactive, deleted or without a next run, some with an agent, odd timestamps
    await db.pool.query(
      `INSERT INTO mana_ai.mission_snapshots (user_id, mission_id, agent_id, record, state, deleted, next_run_at)
       SELECT 'copy-user-' || (g % 20), 'copy-' || g, CASE WHEN g % 7 = 0 THEN 'agent-' || (g % 3) END, '{}'::jsonb,
              CASE WHEN g % 11 = 0 THEN 'paused' ELSE 'active' END, g % 13 = 0,
              CASE WHEN g % 17 = 0 THEN NULL ELSE timestamptz '2026-12-07 09:00:00.000001+00' + g * interval '1 minute 0.0005 s' - interval '30 years' * (g % 2) END
         FROM generate_series(1, 500) g`,
    );
  });
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** Every partition the table's missions fall in, in order. */
  async function partitionsInTable(): Promise<number[]> {
    const { rows } = await db.pool.query<{ p: number }>(`SELECT DISTINCT partition AS p FROM mana_ai.mission_snapshots ORDER BY 1`);
    return rows.map((r) => r.p);
  }

  /** What the load must answer: the snapshots the reactor schedules, by SQL's own due-time function. */
  async function expected(partitions: number[]): Promise<Row[]> {
    const { rows } = await db.pool.query(
      `SELECT sid::float8 AS sid, version::float8 AS version, partition, mana_ai.schedulable_due_ms(state, deleted, next_run_at)::float8 AS "dueMs",
              coalesce(agent_ref, -1)::float8 AS "agentRef", user_ref::float8 AS "userRef"
         FROM mana_ai.mission_snapshots
        WHERE mana_ai.schedulable_due_ms(state, deleted, next_run_at) IS NOT NULL AND partition = ANY($1::int[])
        ORDER BY sid`,
      [partitions],
    );
    return rows;
  }
  async function load(partitions: number[], pageSize: number, rangeBlocks?: number): Promise<{ rows: Row[]; pages: number }> {
    const pages: SchedulePage[] = [];
    for await (const p of loadSchedule(pool, { partitions, pageSize, ...(rangeBlocks ? { rangeBlocks } : {}) })) pages.push(p);
    return { rows: rowsOf(pages).sort((a, b) => a.sid - b.sid), pages: pages.length };
  }

  it('answers exactly the schedulable missions of the partitions asked for, with the due times SQL computes', async () => {
    const all = await partitionsInTable();
    assert.ok(all.length >= 4, 'the users spread over several partitions');
    const want = await expected(all);
    assert.ok(want.length > 300 && want.length < 500, `some rows are not schedulable (${want.length})`);
    assert.ok(want.some((r) => r.agentRef !== -1) && want.some((r) => r.agentRef === -1));
    const got = await load(all, 64);
    assert.deepEqual(got.rows, want);
    assert.equal(got.pages, Math.ceil(want.length / 64));
    const some = all.filter((_, i) => i % 2 === 0);
    assert.deepEqual((await load(some, 1000)).rows, await expected(some));
    // a COPY per block of the table: the same rows, each once
    const { rows: [{ blocks }] } = await db.pool.query(`SELECT pg_relation_size('mana_ai.mission_snapshots') / 8192 AS blocks`);
    assert.ok(Number(blocks) >= 3, `the table spans several blocks (${blocks})`);
    assert.deepEqual((await load(all, 10, 1)).rows, want);
    assert.deepEqual((await load(some, 1000, 2)).rows, await expected(some));
    assert.deepEqual((await load([], 1000)).rows, []);
  });

  it('a caller that stops after one page closes its connection instead of returning it inside a COPY; the pool serves on', async () => {
    const all = await partitionsInTable();
    for (let i = 0; i < 3; i++) {
      for await (const page of loadSchedule(pool, { partitions: all, pageSize: 10 })) {
        assert.equal(page.length, 10);
        break;
      }
      const { rows } = await pool.query(`SELECT 1 AS one`);
      assert.equal(rows[0].one, 1);
      assert.equal((await load(all, 100)).rows.length, (await expected(all)).length);
    }
  });

  it('a backend killed while the load waits fails it (the reactor retries it)', async () => {
    const all = await partitionsInTable();
    // forced: the table locked, so the load's first statement waits for it until its backend is killed
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE mana_ai.mission_snapshots IN ACCESS EXCLUSIVE MODE');
      let seen = 0;
      // its failure is caught at once: it may come before the assertion below awaits it
      const failed = (async () => {
        for await (const page of loadSchedule(pool, { partitions: all })) seen += page.length;
      })().then(() => null, (error: unknown) => error);
      let pid = 0;
      await eventually(async () => {
        const { rows } = await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE query LIKE '%mana_ai.load_partitions%' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`);
        pid = rows[0]?.pid ?? 0;
        return pid !== 0;
      }, 'the load waiting for the table', 10_000);
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const error = await failed;
      assert.ok(error instanceof Error && /terminating connection/.test(error.message), `the load failed with the backend's end (${String(error)})`);
      assert.equal(seen, 0);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const { rows } = await pool.query(`SELECT 1 AS one`);
    assert.equal(rows[0].one, 1, 'the pool connects afresh');
  });

  it('a connection lost inside the COPY fails the load, never ends it short', async () => {
    // 50,000 more rows (3.5 MB): more than the stream reads ahead of its caller (1 MB), so
    // while the caller holds its first page the COPY cannot have reached the client whole
    await db.pool.query(
      `INSERT INTO mana_ai.mission_snapshots (user_id, mission_id, record, state, next_run_at)
       SELECT 'bulk-user-' || (g % 50), 'bulk-' || g, '{}'::jsonb, 'active', now() + g * interval '1 second' FROM generate_series(1, 50000) g`,
    );
    const all = await partitionsInTable();
    let loadClient: pg.PoolClient | null = null;
    const grab = (c: pg.PoolClient) => { loadClient = c; };
    pool.on('acquire', grab);
    let seen = 0;
    try {
      await assert.rejects(async () => {
        for await (const page of loadSchedule(pool, { partitions: all, pageSize: 100 })) {
          // the socket of the load's connection is cut, as a network failure cuts it
          if (seen === 0) (loadClient as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
          seen += page.length;
        }
      });
    } finally {
      pool.off('acquire', grab);
    }
    assert.ok(seen > 0 && seen < 50_000, `the load stopped inside the stream (${seen} rows taken)`);
    const { rows } = await pool.query(`SELECT 1 AS one`);
    assert.equal(rows[0].one, 1, 'the pool connects afresh');
  });
});
