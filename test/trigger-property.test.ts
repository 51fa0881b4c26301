// The trigger's snapshot equals the TypeScript fold (the oracle) for random
// change sequences: out-of-order and equal timestamps, soft and hard
// deletes, re-inserts, missing and malformed fields.
// Starts first (about 19 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import { foldRows, type ChangeRow, type JsonObject } from '../src/merge/merge.js';
import { isDeleted, nextRunAtMs, stateOf } from '../src/merge/derive.js';
import { MERGE_RULE, createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange, type RawChange } from './harness/changes.js';

const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 1000);
const SEED = Number(process.env['PROPERTY_SEED'] ?? 20261124);

let db: TestDb;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

const TS = [
  '2026-01-01T00:00:00.000Z',
  '2026-01-01T00:00:00.001Z',
  '2026-01-02T12:00:00.000Z',
  '2026-03-29T01:30:00.000Z',
  '2025-12-31T23:59:59.999Z',
  '2027-06-01T00:00:00.000Z',
];
const tsArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...TS) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('tomorrow', '', 17, null, true, '2026-02-30T00:00:00.000Z', 'é', '\u{1F600}', '\uE000') },
);
const textArb = fc.string({ unit: fc.constantFrom('a', 'b', 'ä', 'Z', ' ', '\u{1F600}', '\uE000', '"', '\\'), maxLength: 8 });
const scalarArb = fc.oneof(textArb, fc.integer({ min: -5, max: 5 }), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }));
const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalarArb },
  { weight: 1, arbitrary: fc.array(scalarArb, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('kind', 'everyMinutes', 'x'), scalarArb, { maxKeys: 3 }) },
);
const KEYS = ['title', 'state', 'nextRunAt', 'updatedAt', 'createdAt', 'deletedAt', 'cadence', 'iterations', 'id', '__fieldTimestamps', '__lastActor', 'objective', '__proto__', '1'];
const fieldValueArb = (key: string): fc.Arbitrary<unknown> => {
  if (key === 'state') return fc.oneof(fc.constantFrom('active', 'paused', 'done', 'archived'), valueArb);
  if (key === 'nextRunAt' || key === 'updatedAt' || key === 'createdAt' || key === 'deletedAt') return tsArb;
  return valueArb;
};
const dataArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: fc.uniqueArray(fc.constantFrom(...KEYS), { maxLength: 6 }).chain((keys) =>
      fc.tuple(...keys.map((k) => fieldValueArb(k))).map((vals) => {
        const o: Record<string, unknown> = {};
        keys.forEach((k, i) => Object.defineProperty(o, k, { value: vals[i], enumerable: true, writable: true, configurable: true }));
        return o;
      })) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], 'text', 42, [1, 2]) },
);
const ftsArb = (data: unknown): fc.Arbitrary<unknown> => {
  const keys = typeof data === 'object' && data !== null && !Array.isArray(data) ? Object.keys(data) : [];
  return fc.oneof(
    { weight: 10, arbitrary: fc.tuple(...keys.map(() => fc.option(tsArb, { nil: undefined, freq: 4 }))).map((vals) => {
        const o: Record<string, unknown> = {};
        keys.forEach((k, i) => { if (vals[i] !== undefined) Object.defineProperty(o, k, { value: vals[i], enumerable: true, writable: true, configurable: true }); });
        return o;
      }) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(null, [], 'x', 5) },
  );
};
interface GenRow { op: string; data: unknown; fts: unknown }
const rowArb: fc.Arbitrary<GenRow> = fc.constantFrom('insert', 'insert', 'update', 'update', 'update', 'delete').chain((op): fc.Arbitrary<GenRow> => {
  if (op === 'delete') {
    return fc.oneof(
      fc.record({ op: fc.constant(op), data: fc.record({ deletedAt: tsArb }) as fc.Arbitrary<unknown>, fts: fc.constant<unknown>({}) }),
      fc.record({ op: fc.constant(op), data: fc.constantFrom<unknown>({}, null), fts: fc.constant<unknown>({}) }),
    );
  }
  return dataArb.chain((data) => ftsArb(data).map((fts) => ({ op, data, fts })));
});
const sequenceArb = fc.array(rowArb, { minLength: 1, maxLength: 8 });

function jsonRoundTrip<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

it(`trigger snapshot equals the TypeScript fold (${MERGE_RULE} merge rule) for ${RUNS} random sequences`, async () => {
  let n = 0;
  await fc.assert(
    fc.asyncProperty(sequenceArb, async (seq) => {
      n += 1;
      const userId = `prop-${n}`;
      const recordId = `m-${n}`;
      const rows: ChangeRow[] = [];
      for (const r of seq) {
        const change: RawChange = { userId, recordId, op: r.op as RawChange['op'], data: r.data, fieldTimestamps: r.fts };
        const { createdAt } = await pushChange(db.pool, change);
        rows.push({ op: r.op, recordId, data: jsonRoundTrip(r.data), fieldTimestamps: jsonRoundTrip(r.fts) ?? {}, createdAt });
      }
      const expected = foldRows(rows, undefined, MERGE_RULE);
      const { rows: snap } = await db.pool.query(
        'SELECT record, field_ts, state, deleted, next_run_at FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2',
        [userId, recordId],
      );
      if (expected === null) {
        assert.equal(snap.length, 0, 'no snapshot expected');
        return;
      }
      assert.equal(snap.length, 1, 'one snapshot expected');
      const s = snap[0];
      assert.deepStrictEqual(s.record, expected.record);
      assert.deepStrictEqual(s.field_ts, expected.fieldTs);
      assert.equal(s.state, stateOf(expected.record as JsonObject));
      assert.equal(s.deleted, isDeleted(expected.record as JsonObject));
      assert.equal(s.next_run_at === null ? null : s.next_run_at.getTime(), nextRunAtMs(expected.record as JsonObject));
    }),
    { numRuns: RUNS, seed: SEED },
  );
  assert.equal(n >= RUNS, true);
});
