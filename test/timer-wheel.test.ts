// The wheel against a fake clock: never early, within one resolution step
// late, any horizon, one timer at most, none while empty, clock steps.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimerWheel, type TimerWheelOptions, type WheelClock } from '../src/reactor/timer-wheel.js';

/** The wheel takes integer keys (mission table slots); the tests name theirs. */
function keyedWheel(opts: Omit<TimerWheelOptions, 'onFire'> & { onFire: (key: string, dueMs: number) => void }) {
  const ids = new Map<string, number>();
  const names: string[] = [];
  const id = (k: string) => {
    if (!ids.has(k)) {
      ids.set(k, names.length);
      names.push(k);
    }
    return ids.get(k)!;
  };
  const wheel = new TimerWheel({ ...opts, initialCapacity: 16, onFire: (k, due) => opts.onFire(names[k]!, due) });
  return {
    schedule: (k: string, due: number, _value?: undefined) => wheel.schedule(id(k), due),
    cancel: (k: string) => wheel.cancel(id(k)),
    has: (k: string) => wheel.has(id(k)),
    get size() {
      return wheel.size;
    },
    armedAt: () => wheel.armedAt(),
    close: () => wheel.close(),
  };
}
type KeyedWheel = ReturnType<typeof keyedWheel>;

class FakeClock implements WheelClock {
  wall: number;
  mono = 0;
  timers = new Map<number, { fn: () => void; at: number }>();
  nextId = 1;
  setCalls = 0;
  constructor(start: number) {
    this.wall = start;
  }
  now() {
    return this.wall;
  }
  monotonic() {
    return this.mono;
  }
  setTimer(fn: () => void, ms: number) {
    this.setCalls += 1;
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.mono + ms });
    return id;
  }
  clearTimer(h: unknown) {
    this.timers.delete(h as number);
  }
  /** Advances both clocks, running timers as they come due. */
  advance(ms: number) {
    const end = this.mono + ms;
    for (;;) {
      const next = [...this.timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      this.wall += next[1].at - this.mono;
      this.mono = next[1].at;
      this.timers.delete(next[0]);
      next[1].fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
  /** Steps the wall clock only (NTP). */
  step(ms: number) {
    this.wall += ms;
  }
}

const T0 = Date.parse('2026-11-24T12:00:00.000Z');

function makeWheel(clock: FakeClock, res = 10) {
  const fired: { key: string; due: number; at: number }[] = [];
  const wheel = keyedWheel({ clock, resolutionMs: res, onFire: (key, due) => fired.push({ key, due, at: clock.now() }) });
  return { wheel, fired };
}

describe('timer wheel', () => {
  it('fires no earlier than due and within the resolution after it', () => {
    const clock = new FakeClock(T0 + 3);
    const { wheel, fired } = makeWheel(clock);
    const offsets = [1, 7, 10, 15, 99, 640, 641, 5_000, 40_961, 61_000, 3_600_000, 86_400_000 + 13];
    for (const o of offsets) wheel.schedule(`k${o}`, T0 + o, undefined);
    assert.equal(clock.timers.size, 1, 'one timer at most');
    clock.advance(86_400_000 + 1_000);
    assert.equal(fired.length, offsets.length);
    for (const f of fired) {
      assert.ok(f.at >= f.due, `${f.key} fired ${f.due - f.at} ms early`);
      assert.ok(f.at - f.due <= 10, `${f.key} fired ${f.at - f.due} ms late`);
    }
    assert.deepEqual(fired.map((f) => f.due), [...fired.map((f) => f.due)].sort((a, b) => a - b), 'in due order');
    assert.equal(clock.timers.size, 0, 'no timer while empty');
  });

  it('aims at the due time itself, not at the end of its tick', () => {
    const clock = new FakeClock(T0);
    const { wheel, fired } = makeWheel(clock, 10);
    wheel.schedule('a', T0 + 1003, undefined);
    wheel.schedule('b', T0 + 1007, undefined);
    wheel.schedule('c', T0 + 1500, undefined);
    clock.advance(2000);
    assert.deepEqual(fired.map((f) => [f.key, f.at - f.due]), [['a', 0], ['b', 0], ['c', 0]]);
    wheel.close();
  });

  it('keeps far horizons: 40 days and 3 years do not fire early', () => {
    const clock = new FakeClock(T0);
    const { wheel, fired } = makeWheel(clock);
    const forty = T0 + 40 * 86_400_000;
    const three = T0 + 3 * 365 * 86_400_000;
    wheel.schedule('40d', forty, undefined);
    wheel.schedule('3y', three, undefined);
    clock.advance(40 * 86_400_000 - 1);
    assert.equal(fired.length, 0);
    clock.advance(20);
    assert.deepEqual(fired.map((f) => f.key), ['40d']);
    clock.advance(three - clock.now() - 1);
    assert.equal(fired.length, 1);
    clock.advance(20);
    assert.deepEqual(fired.map((f) => f.key), ['40d', '3y']);
    assert.ok(fired[1]!.at >= three && fired[1]!.at - three <= 10);
  });

  it('cancels and reschedules in place', () => {
    const clock = new FakeClock(T0);
    const { wheel, fired } = makeWheel(clock);
    wheel.schedule('a', T0 + 1_000, undefined);
    wheel.schedule('b', T0 + 2_000, undefined);
    wheel.schedule('c', T0 + 3_000, undefined);
    assert.equal(wheel.cancel('b'), true);
    assert.equal(wheel.cancel('b'), false);
    wheel.schedule('c', T0 + 500, undefined); // moved earlier
    wheel.schedule('a', T0 + 5_000, undefined); // moved later
    assert.equal(wheel.size, 2);
    clock.advance(10_000);
    assert.deepEqual(fired.map((f) => [f.key, f.due - T0]), [['c', 500], ['a', 5_000]]);
  });

  it('fires at once what is already due; a past due time is never lost', () => {
    const clock = new FakeClock(T0);
    const { wheel, fired } = makeWheel(clock);
    wheel.schedule('past', T0 - 60_000, undefined);
    clock.advance(0);
    assert.deepEqual(fired.map((f) => f.key), ['past']);
  });

  it('arms no timer while empty and none after the last entry is cancelled', () => {
    const clock = new FakeClock(T0);
    const { wheel } = makeWheel(clock);
    assert.equal(wheel.armedAt(), null);
    wheel.schedule('x', T0 + 100_000, undefined);
    assert.notEqual(wheel.armedAt(), null);
    wheel.cancel('x');
    assert.equal(wheel.armedAt(), null);
    assert.equal(clock.timers.size, 0);
  });

  it('sleeps at most maxSleep while something far away is scheduled (to notice clock steps), never busy-loops', () => {
    const clock = new FakeClock(T0);
    const { wheel } = makeWheel(clock);
    wheel.schedule('far', T0 + 86_400_000, undefined);
    const before = clock.setCalls;
    clock.advance(3_600_000);
    const wakeups = clock.setCalls - before;
    assert.ok(wakeups <= 61 + 8, `${wakeups} wake-ups in an hour`);
  });

  it('notices a wall-clock step backwards and does not fire early', () => {
    const clock = new FakeClock(T0);
    const steps: number[] = [];
    const fired: string[] = [];
    const wheel = keyedWheel({ clock, onFire: (k) => fired.push(k), onClockStep: (d) => steps.push(d) });
    wheel.schedule('due-at-T0+2h', T0 + 2 * 3_600_000, undefined);
    clock.advance(30 * 60_000);
    clock.step(-3_600_000); // wall clock jumps back an hour
    clock.advance(95 * 60_000); // monotonic 2h05m later, wall only 1h05m
    assert.equal(steps.length, 1);
    assert.deepEqual(fired, [], 'wall time is T0+1h05m: not due');
    clock.advance(60 * 60_000);
    assert.deepEqual(fired, ['due-at-T0+2h']);
  });

  it('notices a wall-clock step forwards and fires what became due', () => {
    const clock = new FakeClock(T0);
    const fired: { k: string; at: number }[] = [];
    const wheel = keyedWheel({ clock, onFire: (k) => fired.push({ k, at: clock.now() }) });
    wheel.schedule('in-2h', T0 + 2 * 3_600_000, undefined);
    clock.step(3 * 3_600_000);
    clock.advance(60_000);
    assert.equal(fired.length, 1);
    assert.ok(fired[0]!.at >= T0 + 2 * 3_600_000);
  });

  it('lets a callback reschedule its own key', () => {
    const clock = new FakeClock(T0);
    let count = 0;
    const wheel: KeyedWheel = keyedWheel({
      clock,
      onFire: (k, due) => {
        count += 1;
        if (count < 3) wheel.schedule(k, due + 1_000, undefined);
      },
    });
    wheel.schedule('r', T0 + 1_000, undefined);
    clock.advance(10_000);
    assert.equal(count, 3);
    assert.equal(wheel.size, 0);
  });

  it('fires a large due set in passes of maxFirePerPass, in due order, yielding to the event loop between passes', () => {
    const clock = new FakeClock(T0);
    const fired: number[] = [];
    const wheel = keyedWheel({ clock, maxFirePerPass: 1_000, onFire: (_k, due) => fired.push(due) });
    for (let i = 0; i < 2_500; i++) wheel.schedule(`k${i}`, T0 + 100 + ((i * 7919) % 2_500) / 10);
    const setsBefore = clock.setCalls;
    clock.advance(400);
    assert.equal(fired.length, 2_500, 'all fired');
    assert.deepEqual(fired, [...fired].sort((a, b) => a - b), 'in due order across passes');
    assert.ok(clock.setCalls - setsBefore >= 3, 'at least three timer turns for 2,500 entries at 1,000 a pass');
    assert.equal(wheel.size, 0);
  });

  it('fires 1,000,000 overdue entries with distinct due times in near-linear time, each once, in due order (issue 18, item 8)', () => {
    // Before: each pass detached, sorted and re-linked everything ready:
    // 57.5 s of event loop for this set. The bound is generous on purpose.
    const clock = new FakeClock(T0);
    const n = 1_000_000;
    let count = 0;
    let last = -Infinity;
    let ordered = true;
    const wheel = new TimerWheel({
      clock, initialCapacity: n, onFire: (_k, due) => {
        count += 1;
        if (due < last) ordered = false;
        last = due;
      },
    });
    for (let i = 0; i < n; i++) wheel.schedule(i, T0 - 1 - ((i * 7919) % n));
    const t = performance.now();
    for (let turns = 0; count < n && turns < 1_000; turns++) clock.advance(1);
    const ms = performance.now() - t;
    assert.equal(count, n, 'every entry fired');
    assert.ok(ordered, 'in due order across passes');
    assert.equal(wheel.size, 0);
    assert.ok(ms < 20_000, `took ${Math.round(ms)} ms`);
  });

  it('entries cancelled or moved while they wait in the backlog: the moved fire at their new time, the cancelled never, the rest once', () => {
    const clock = new FakeClock(T0);
    const fired = new Map<number, number>();
    let touched = false;
    const wheel: TimerWheel = new TimerWheel({
      clock, maxFirePerPass: 100, onFire: (k) => {
        fired.set(k, (fired.get(k) ?? 0) + 1);
        if (fired.size === 100 && !touched) {
          // end of the first pass: 900 wait in the backlog
          touched = true;
          for (let i = 500; i < 600; i++) wheel.cancel(i);
          for (let i = 600; i < 700; i++) wheel.schedule(i, T0 + 60_000); // moved to the future
          for (let i = 700; i < 710; i++) wheel.schedule(i, T0 - 5_000); // moved, still overdue: fire once
        }
      },
    });
    for (let i = 0; i < 1_000; i++) wheel.schedule(i, T0 - 1_000 + i);
    clock.advance(100);
    assert.ok(touched);
    assert.equal(fired.size, 800, 'all but the cancelled and the moved-away');
    assert.ok([...fired.values()].every((n) => n === 1), 'each once');
    assert.ok(![...fired.keys()].some((k) => k >= 500 && k < 700));
    clock.advance(60_010);
    assert.equal(fired.size, 900, 'the moved ones at their new time');
    assert.ok([...fired.values()].every((n) => n === 1), 'each once');
    assert.equal(wheel.size, 0);
  });

  it('matches a naive model for random operations', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const clock = new FakeClock(T0);
    const fired = new Map<string, number>();
    // lateness counts from the due time, or from scheduling when that was later
    const earliest = new Map<string, number>();
    const wheel = keyedWheel({ clock, onFire: (k) => fired.set(k, clock.now() - earliest.get(k)!) });
    const model = new Map<string, number>();
    for (let step = 0; step < 3000; step++) {
      const r = rand();
      const key = `k${Math.floor(rand() * 200)}`;
      if (r < 0.5) {
        const due = clock.now() + Math.floor(rand() * rand() * 10_000_000) - 1000;
        earliest.set(key, Math.max(due, clock.now()));
        wheel.schedule(key, due, undefined);
        model.set(key, due);
        fired.delete(key);
      } else if (r < 0.6) {
        wheel.cancel(key);
        model.delete(key);
      } else {
        clock.advance(Math.floor(rand() * 200_000));
        for (const [k, due] of model) {
          if (due <= clock.now() - 10) {
            assert.ok(fired.has(k), `${k} due ${clock.now() - due} ms ago has not fired`);
            assert.ok(fired.get(k)! >= 0 && fired.get(k)! <= 10, `${k} lateness ${fired.get(k)}`);
            model.delete(k);
          } else if (due > clock.now()) {
            assert.equal(fired.has(k), false, `${k} fired early`);
          }
        }
      }
    }
  });
});
