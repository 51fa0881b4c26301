// The repair's rule, pure (src/write-back/iteration-union.ts; issue 28):
// the current array plus every lost iteration, each id once, by startedAt
// then id; the current version wins where both have an id; among losses of
// one id the latest recorded wins; nothing to write when nothing is missing.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unionWithLost } from '../src/write-back/iteration-union.js';

const it_ = (id: string, startedAt: string, extra: Record<string, unknown> = {}) => ({ id, startedAt, ...extra });

describe('unionWithLost', () => {
  it('adds what is missing, in startedAt then id order, and names the ids restored', () => {
    const r = unionWithLost([it_('b', '2026-01-02')], [[it_('a', '2026-01-01'), it_('c', '2026-01-03')]]);
    assert.deepEqual(r.iterations?.map((x) => (x as { id: string }).id), ['a', 'b', 'c']);
    assert.deepEqual(r.restored, ['a', 'c']);
  });

  it("keeps the current version of an id present in both (the device's feedback, statuses, proposal markers)", () => {
    const current = [it_('s', '2026-01-01', { overallStatus: 'rejected', userFeedback: 'Nein', plan: [{ proposalId: 'p1' }] })];
    const r = unionWithLost(current, [[it_('s', '2026-01-01', { overallStatus: 'awaiting-review' }), it_('t', '2026-01-02')]]);
    assert.deepEqual(r.iterations, [current[0], it_('t', '2026-01-02')]);
    assert.deepEqual(r.restored, ['t']);
  });

  it('one id lost twice comes back once, as the later loss recorded it', () => {
    const r = unionWithLost([], [[it_('x', '2026-01-01', { v: 1 })], [it_('x', '2026-01-01', { v: 2 })]]);
    assert.deepEqual(r.iterations, [it_('x', '2026-01-01', { v: 2 })]);
  });

  it('nothing missing: nothing to write; garbage is no iteration', () => {
    assert.deepEqual(unionWithLost([it_('a', '1')], [[it_('a', '1')]]), { iterations: null, restored: [] });
    assert.deepEqual(unionWithLost('not an array', [null, 'x', [1, 'y', null]]), { iterations: null, restored: [] });
  });
});
