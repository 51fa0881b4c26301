// The reactor's emitter (src/reactor/events.ts) on its own: listeners run
// in order, a `once` listener once, and one that throws or rejects is
// reported while the others still run. No database.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { GuardedEmitter } from '../src/reactor/events.js';

interface TestEvents {
  tick: [n: number];
}

it('calls every listener in order, once-listeners once, and reports what a listener throws or rejects instead of throwing it', async () => {
  const reported: [string, string][] = [];
  const e = new GuardedEmitter<TestEvents>((event, error) => reported.push([event, (error as Error).message]));
  const heard: string[] = [];
  e.on('tick', (n) => heard.push(`a${n}`));
  e.on('tick', () => {
    throw new Error('b broke');
  });
  e.once('tick', (n) => heard.push(`once${n}`));
  e.on('tick', async () => {
    throw new Error('async broke');
  });
  e.on('tick', (n) => heard.push(`c${n}`));
  assert.equal(e.emit('tick', 1), true);
  assert.equal(e.emit('tick', 2), true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(heard, ['a1', 'once1', 'c1', 'a2', 'c2']);
  assert.deepEqual(reported, [['tick', 'b broke'], ['tick', 'b broke'], ['tick', 'async broke'], ['tick', 'async broke']]);
  assert.equal(e.listenerCount('tick'), 4, 'the once-listener is gone, the others stay');
  assert.equal(new GuardedEmitter<TestEvents>(() => {}).emit('tick', 3), false, 'no listener');
  // a reporter that throws is not the emitter's caller's problem either
  const bad = new GuardedEmitter<TestEvents>(() => {
    throw new Error('reporter broke');
  });
  bad.on('tick', () => {
    throw new Error('x');
  });
  assert.doesNotThrow(() => bad.emit('tick', 4));
});
