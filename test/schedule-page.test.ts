// The packed schedule as the load hands it over (src/db/sql/schedule-page.ts):
// 44-byte records of big-endian int8/int4 values, read in place, also from
// a Buffer that is a slice of a larger one. Pure: no database.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchedulePage } from '../src/db/sql/schedule-page.js';

type Row = { sid: number; version: number; partition: number; dueMs: number; agentRef: number; userRef: number };

function pack(rows: Row[]): Buffer {
  const b = Buffer.alloc(rows.length * 44);
  rows.forEach((r, i) => {
    const at = i * 44;
    b.writeBigInt64BE(BigInt(r.sid), at);
    b.writeBigInt64BE(BigInt(r.version), at + 8);
    b.writeInt32BE(r.partition, at + 16);
    b.writeBigInt64BE(BigInt(r.dueMs), at + 20);
    b.writeBigInt64BE(BigInt(r.agentRef), at + 28);
    b.writeBigInt64BE(BigInt(r.userRef), at + 36);
  });
  return b;
}

const rows: Row[] = [
  { sid: 1, version: 1, partition: 0, dueMs: Date.parse('2026-12-07T09:00:00.123Z'), agentRef: -1, userRef: 7 },
  { sid: 2 ** 40 + 5, version: 2 ** 33, partition: 63, dueMs: 0, agentRef: 2 ** 53 - 1, userRef: -(2 ** 52) },
  { sid: 9_007_199_254_740_000, version: 3, partition: 17, dueMs: 253_402_300_799_999, agentRef: -(2 ** 53 - 1), userRef: 0 },
];

describe('the packed schedule page', () => {
  it('reads every value of every record exactly, across the whole ±2^53 range', () => {
    const page = new SchedulePage(pack(rows));
    assert.equal(page.length, rows.length);
    rows.forEach((r, i) => {
      assert.deepEqual(
        { sid: page.sid(i), version: page.version(i), partition: page.partition(i), dueMs: page.dueMs(i), agentRef: page.agentRef(i), userRef: page.userRef(i) },
        r,
      );
    });
  });

  it('reads a page that is a slice of a larger buffer at its own offset', () => {
    const packed = pack(rows);
    const larger = Buffer.concat([Buffer.alloc(13, 0xff), packed, Buffer.alloc(7, 0xee)]);
    const page = new SchedulePage(larger.subarray(13, 13 + packed.length));
    assert.equal(page.length, rows.length);
    assert.deepEqual([0, 1, 2].map((i) => [page.sid(i), page.dueMs(i), page.agentRef(i)]), rows.map((r) => [r.sid, r.dueMs, r.agentRef]));
  });

  it('an empty page has no records', () => {
    const page = new SchedulePage(Buffer.alloc(0));
    assert.equal(page.length, 0);
  });
});
