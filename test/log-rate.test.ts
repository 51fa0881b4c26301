// Rate-limited logging of per-row errors: 20 lines a minute, the rest
// counted and reported by the next line that gets through.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { LogRate } from '../src/log-rate.js';

it('lets perWindow lines through a window, counts the rest, and says so in the next window', () => {
  let t = 0;
  const rate = new LogRate(3, 60_000, () => t);
  const got = Array.from({ length: 10 }, () => rate.take());
  assert.deepEqual(got.slice(0, 3), [{ suppressedBefore: 0 }, { suppressedBefore: 0 }, { suppressedBefore: 0 }]);
  assert.ok(got.slice(3).every((g) => g === null));
  t = 59_999;
  assert.equal(rate.take(), null);
  t = 60_000;
  assert.deepEqual(rate.take(), { suppressedBefore: 8 });
  assert.deepEqual(rate.take(), { suppressedBefore: 0 });
});
