// Hand-computed cases for the clauses of the merge rule (CONTRACT.md
// section 3) that the property test only checks by comparing our two
// copies of the rule with each other: an insert into a known record, the
// updatedAt fallback for a field without a stored timestamp, and a soft
// delete older than the stored one; and the clauses in which the HEAD
// webapp's rule differs (section 12: no updatedAt fallback, a soft delete
// sets only deletedAt, an insert row's own timestamps). Each expected record
// is written out by hand, and both the TypeScript fold and the trigger of a
// database folding with that rule must produce it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { foldRows, type ChangeRow, type MergeRule } from '../src/merge/merge.js';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { pushChange } from './harness/changes.js';

const dbs = {} as Record<MergeRule, TestDb>;
before(async () => {
  [dbs['v0.4'], dbs.head] = await Promise.all([createTestDatabase({ webapp: 'v0.4' }), createTestDatabase({ webapp: 'head' })]);
});
after(async () => {
  await Promise.all(Object.values(dbs).map((d) => d.drop()));
});

interface Case {
  name: string;
  /** the webapp whose rule this case is about (default v0.4) */
  rule?: MergeRule;
  rows: Omit<ChangeRow, 'recordId' | 'createdAt'>[];
  record: Record<string, unknown>;
  fieldTs: Record<string, string>;
}

const T1 = '2026-01-01T00:00:00.000Z';
const T2 = '2026-01-02T00:00:00.000Z';
const T3 = '2026-01-03T00:00:00.000Z';

const CASES: Case[] = [
  {
    name: 'insert into a known record: each field merged with the record time (data.updatedAt); older fields lose, newer win',
    rows: [
      { op: 'insert', data: { title: 'A', note: 'alt', updatedAt: T2 }, fieldTimestamps: {} },
      { op: 'update', data: { note: 'neu' }, fieldTimestamps: { note: T3 } },
      { op: 'insert', data: { title: 'B', note: 'zurück', extra: 1, updatedAt: T2 }, fieldTimestamps: {} },
    ],
    // title: T2 >= T2 (tie goes to the later row) -> B; note: T2 < T3 -> stays neu; extra: no stored ts, compares as updatedAt T2 -> set
    record: { id: 'r', title: 'B', note: 'neu', extra: 1, updatedAt: T2 },
    fieldTs: { title: T2, note: T3, extra: T2, updatedAt: T2 },
  },
  {
    name: 'a field without a stored timestamp compares as the record’s updatedAt (before the row)',
    rows: [
      { op: 'insert', data: { title: 'A', updatedAt: T2 }, fieldTimestamps: {} },
      // a new field stamped older than the record's updatedAt loses; one stamped newer wins
      { op: 'update', data: { color: 'rot', size: 'L' }, fieldTimestamps: { color: T1, size: T3 } },
    ],
    record: { id: 'r', title: 'A', size: 'L', updatedAt: T2 },
    fieldTs: { title: T2, size: T3, updatedAt: T2 },
  },
  {
    name: 'an older soft delete changes nothing; a newer one sets deletedAt and updatedAt',
    rows: [
      { op: 'insert', data: { title: 'A', updatedAt: T1 }, fieldTimestamps: {} },
      { op: 'delete', data: { deletedAt: T3 }, fieldTimestamps: {} },
      { op: 'delete', data: { deletedAt: T2 }, fieldTimestamps: {} },
    ],
    record: { id: 'r', title: 'A', updatedAt: T3, deletedAt: T3 },
    fieldTs: { title: T1, updatedAt: T3, deletedAt: T3 },
  },
  {
    name: 'without updatedAt the record time is createdAt',
    rows: [
      { op: 'insert', data: { title: 'A', createdAt: T1 }, fieldTimestamps: {} },
    ],
    record: { id: 'r', title: 'A', createdAt: T1 },
    fieldTs: { title: T1, createdAt: T1 },
  },
  {
    name: 'an insert row’s own field timestamps are ignored: every field gets the record time',
    rows: [
      { op: 'insert', data: { title: 'A', theme: 'dunkel', updatedAt: T2 }, fieldTimestamps: { theme: T1 } },
      // theme's stored time is T2 (the record time): an update stamped T1 loses
      { op: 'update', data: { theme: 'hell' }, fieldTimestamps: { theme: T1 } },
    ],
    record: { id: 'r', title: 'A', theme: 'dunkel', updatedAt: T2 },
    fieldTs: { title: T2, theme: T2, updatedAt: T2 },
  },
  {
    rule: 'head',
    name: 'HEAD: a field without a stored timestamp compares as the empty string (no updatedAt fallback)',
    rows: [
      { op: 'insert', data: { title: 'A', updatedAt: T2 }, fieldTimestamps: {} },
      // both new fields win, also the one stamped older than the record's updatedAt
      { op: 'update', data: { color: 'rot', size: 'L' }, fieldTimestamps: { color: T1, size: T3 } },
    ],
    record: { id: 'r', title: 'A', color: 'rot', size: 'L', updatedAt: T2 },
    fieldTs: { title: T2, color: T1, size: T3, updatedAt: T2 },
  },
  {
    rule: 'head',
    name: 'HEAD: a newer soft delete sets only deletedAt; an older one changes nothing',
    rows: [
      { op: 'insert', data: { title: 'A', updatedAt: T1 }, fieldTimestamps: {} },
      { op: 'delete', data: { deletedAt: T3 }, fieldTimestamps: {} },
      { op: 'delete', data: { deletedAt: T2 }, fieldTimestamps: {} },
    ],
    record: { id: 'r', title: 'A', updatedAt: T1, deletedAt: T3 },
    fieldTs: { title: T1, updatedAt: T1, deletedAt: T3 },
  },
  {
    rule: 'head',
    name: 'HEAD: an insert row’s own field timestamps are kept (mana-auth’s bootstrap rows), the record time elsewhere',
    rows: [
      { op: 'insert', data: { title: 'A', theme: 'dunkel', updatedAt: T2 }, fieldTimestamps: { theme: T1 } },
      // theme's stored time is T1: an update stamped T1 wins (ties go to the later row)
      { op: 'update', data: { theme: 'hell' }, fieldTimestamps: { theme: T1 } },
    ],
    record: { id: 'r', title: 'A', theme: 'hell', updatedAt: T2 },
    fieldTs: { title: T2, theme: T1, updatedAt: T2 },
  },
];

describe('merge rule, hand-computed', () => {
  for (const [i, c] of CASES.entries()) {
    it(c.name, async () => {
      const createdAt = (k: number) => new Date(Date.parse('2026-05-01T00:00:00.000Z') + k).toISOString();
      const rule = c.rule ?? 'v0.4';
      const db = dbs[rule];
      const ts = foldRows(c.rows.map((r, k) => ({ ...r, recordId: 'r', createdAt: createdAt(k) })), undefined, rule);
      assert.deepEqual(ts?.record, c.record, 'TypeScript fold');
      assert.deepEqual(ts?.fieldTs, c.fieldTs, 'TypeScript field timestamps');

      const user = `merge-${i}`;
      for (const r of c.rows) await pushChange(db.pool, { userId: user, recordId: 'r', op: r.op as 'insert' | 'update' | 'delete', data: r.data, fieldTimestamps: r.fieldTimestamps });
      const { rows } = await db.pool.query(`SELECT record, field_ts FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = 'r'`, [user]);
      assert.deepEqual(rows[0].record, c.record, 'trigger');
      assert.deepEqual(rows[0].field_ts, c.fieldTs, 'trigger field timestamps');
    });
  }
});
