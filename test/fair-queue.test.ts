// The run queue's order without a database: round-robin across users, then
// across a user's agents, due order inside a lane; one waiting due time per
// mission; the mission table's slots.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue } from '../src/reactor/fair-queue.js';
import { MissionTable, NO_REF } from '../src/reactor/mission-table.js';
import { clampRetryAt } from '../src/reactor/backoff.js';

const drain = (q: FairQueue) => {
  const out: number[] = [];
  for (let r = q.pop(); r; r = q.pop()) out.push(r.sid);
  return out;
};

describe('fair queue', () => {
  it('serves 200 runs of one user and 20 single runs of others round-robin: all 20 within the first 21', () => {
    const q = new FairQueue();
    const due = 1_000;
    for (let i = 0; i < 200; i++) q.push(i, due, 1, NO_REF); // the big user first
    for (let u = 0; u < 20; u++) q.push(1_000 + u, due, 100 + u, NO_REF);
    const order = drain(q);
    assert.equal(order.length, 220);
    const positions = order.map((sid, i) => (sid >= 1_000 ? i : -1)).filter((i) => i >= 0);
    assert.equal(positions.length, 20);
    assert.ok(Math.max(...positions) < 21, `the last single run is number ${Math.max(...positions) + 1}`);
    assert.deepEqual(positions, Array.from({ length: 20 }, (_, i) => i), 'users with fewer waiting runs go first inside a round');
    assert.deepEqual(order.filter((sid) => sid < 1_000), Array.from({ length: 200 }, (_, i) => i), 'the big user\'s runs in due (then sid) order');
  });

  it('takes a user\'s agents (and its agentless missions) in turn, each lane in due order', () => {
    const q = new FairQueue();
    q.push(1, 300, 7, 11);
    q.push(2, 100, 7, 11);
    q.push(3, 200, 7, 11);
    q.push(4, 500, 7, 22);
    q.push(5, 400, 7, NO_REF);
    q.push(6, 600, 8, NO_REF);
    // users 8 (one run: fewer waiting, so first in the round) and 7 alternate;
    // inside 7 the lanes 11, 22, none take turns; lane 11 goes by due time
    assert.deepEqual(drain(q), [6, 2, 4, 5, 3, 1]);
  });

  it('keeps one due time per mission: a newer one replaces the waiting one and says which', () => {
    const q = new FairQueue();
    assert.equal(q.push(1, 100, 1, NO_REF), null);
    assert.equal(q.push(1, 100, 1, NO_REF), false, 'the same run twice is one run');
    assert.equal(q.push(1, 200, 1, NO_REF), 100);
    assert.equal(q.size, 1);
    assert.equal(q.has(1, 100), false);
    assert.equal(q.has(1, 200), true);
    assert.deepEqual(q.pop(), { sid: 1, dueMs: 200 });
    assert.equal(q.pop(), undefined);
    assert.equal(q.size, 0);
  });

  it('holds 100,000 queued runs as numbers: pushes and pops them all in order per lane', () => {
    const q = new FairQueue();
    for (let i = 0; i < 100_000; i++) q.push(i, 1_000 + (i % 977), i % 1_000, NO_REF);
    assert.equal(q.size, 100_000);
    const lastDue = new Map<number, number>();
    let n = 0;
    for (let r = q.pop(); r; r = q.pop(), n++) {
      const user = r.sid % 1_000;
      assert.ok((lastDue.get(user) ?? -Infinity) <= r.dueMs, 'due order inside a user');
      lastDue.set(user, r.dueMs);
    }
    assert.equal(n, 100_000);
  });
});

describe('mission table', () => {
  it('a load row older than what a notification told changes neither the refs nor the version (issue 18)', () => {
    const t = new MissionTable(16);
    const slot = t.ensure(7);
    // the notification: version 5, agent 900
    t.version[slot] = 5;
    t.agentRef[slot] = 900;
    t.userRef[slot] = 11;
    assert.equal(t.applyLoaded(slot, { partition: 3, version: 4, agentRef: 111, userRef: 22 }), false, 'an older page: not armed');
    assert.deepEqual([t.agentRef[slot], t.userRef[slot], t.version[slot], t.seen[slot], t.partition[slot]], [900, 11, 5, 1, 3], 'refs and version kept; seen');
    assert.equal(t.applyLoaded(slot, { partition: 3, version: 6, agentRef: NO_REF, userRef: 22 }), true);
    assert.deepEqual([t.agentRef[slot], t.userRef[slot], t.version[slot]], [NO_REF, 22, 6]);
  });

  it('gives each mission a slot, reuses freed slots, grows past its capacity and keeps columns', () => {
    const t = new MissionTable(16);
    const slots = Array.from({ length: 100 }, (_, i) => t.ensure(1_000 + i));
    assert.equal(new Set(slots).size, 100);
    assert.equal(t.size, 100);
    t.version[slots[42]!] = 7;
    t.agentRef[slots[42]!] = 2 ** 52 + 1;
    assert.equal(t.ensure(1_042), slots[42], 'a known mission keeps its slot');
    assert.equal(t.version[t.slotOf(1_042)!], 7);
    assert.equal(t.agentRef[t.slotOf(1_042)!], 2 ** 52 + 1, '53-bit refs are exact');
    assert.equal(t.release(1_042), slots[42]);
    assert.equal(t.slotOf(1_042), undefined);
    const reused = t.ensure(5_000);
    assert.equal(reused, slots[42], 'the freed slot is reused');
    assert.equal(t.version[reused], -1, 'with nothing known');
    assert.equal(t.agentRef[reused], NO_REF);
    assert.equal(t.sid[reused], 5_000);
    assert.deepEqual([...t.slots()].length, 100);
    assert.ok([...t.slots()].every((slot) => t.slotOf(t.sid[slot]!) === slot), 'every live slot is indexed under its sid');
  });
});

describe('retry clamp', () => {
  it('a retry time from a database clock behind ours is never sooner than the minimum delay (no spinning claims)', () => {
    const now = 1_000_000;
    assert.equal(clampRetryAt(now - 30_000, now, 500), now + 500, 'the database says 30 s ago: half a second from now');
    assert.equal(clampRetryAt(now + 60_000, now, 500), now + 60_000, 'a future time stands');
    assert.equal(clampRetryAt(Number.NaN, now, 500), now + 500);
  });
});
