// The partition split (pure): every daemon computes the same shares, they
// add up to 64, differ by at most one, and a change moves few partitions.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRebalance, targetShare } from '../src/reactor/balance.js';

const P = 64;

/** Runs rebalances round-robin until nobody changes anything, as the NOTIFYs would. */
function settle(members: number[], owned: Map<number, Set<number>>): number {
  let moves = 0;
  for (let round = 0; round < 20; round++) {
    let changed = false;
    for (const slot of members) {
      const mine = owned.get(slot) ?? new Set<number>();
      owned.set(slot, mine);
      const held = new Set([...owned.values()].flatMap((s) => [...s]));
      const plan = planRebalance({ partitions: P, members, mySlot: slot, owned: mine, held });
      for (const p of plan.release) {
        mine.delete(p);
        moves++;
        changed = true;
      }
      for (const p of plan.candidates) {
        if (mine.size >= plan.target) break;
        if ([...owned.values()].some((s) => s.has(p))) continue;
        mine.add(p);
        moves++;
        changed = true;
      }
    }
    if (!changed) return moves;
  }
  throw new Error('did not settle in 20 rounds');
}

describe('partition split', () => {
  it('shares add up to 64 and differ by at most one, for 1 to 64 daemons with any slots', () => {
    for (let m = 1; m <= 64; m++) {
      const slots = Array.from({ length: m }, (_, i) => i * 3 + 1);
      const shares = slots.map((s) => targetShare(P, slots, s));
      assert.equal(shares.reduce((a, b) => a + b, 0), P, `m=${m}`);
      assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, `m=${m}`);
    }
    assert.equal(targetShare(P, [5], 5), 64, 'alone: every partition');
  });

  it('settles: three daemons 21/21/22, one leaves and two own everything, a fourth joins and gets 16', () => {
    const owned = new Map<number, Set<number>>();
    settle([0, 1, 2], owned);
    assert.deepEqual([0, 1, 2].map((s) => owned.get(s)!.size).sort(), [21, 21, 22]);
    const all = () => new Set([...owned.values()].flatMap((s) => [...s]));
    assert.equal(all().size, 64, 'every partition owned, none twice');

    owned.delete(1); // killed: its session's locks are gone
    settle([0, 2], owned);
    assert.deepEqual([0, 2].map((s) => owned.get(s)!.size), [32, 32]);
    assert.equal(all().size, 64);

    const before = new Map([...owned].map(([k, v]) => [k, new Set(v)]));
    const moves = settle([0, 2, 3, 4], owned);
    assert.deepEqual([0, 2, 3, 4].map((s) => owned.get(s)!.size), [16, 16, 16, 16]);
    assert.equal(all().size, 64);
    const kept = [0, 2].reduce((n, s) => n + [...owned.get(s)!].filter((p) => before.get(s)!.has(p)).length, 0);
    assert.equal(kept, 32, 'the two old daemons keep 16 each of what they had: only what must move, moves');
    assert.equal(moves, 64, '32 released and 32 taken');
  });

  it('prefers home partitions and releases foreign ones first', () => {
    const plan = planRebalance({ partitions: 8, members: [0, 1], mySlot: 0, owned: new Set([0, 1, 2, 3, 4, 5, 6, 7]), held: new Set([0, 1, 2, 3, 4, 5, 6, 7]) });
    assert.equal(plan.target, 4);
    assert.deepEqual(plan.release.sort(), [1, 3, 5, 7]);
    const taker = planRebalance({ partitions: 8, members: [0, 1], mySlot: 1, owned: new Set(), held: new Set([0, 2]) });
    assert.deepEqual(taker.candidates, [1, 3, 5, 7, 4, 6]);
  });
});
