// A hierarchical timer wheel: holds every mission's next run in memory and
// fires each entry no earlier than its due time and within one resolution
// step after it. Pure: time comes from an injected clock, so tests drive it
// with a fake one. It must never do I/O and never arm more than one timer.
//
// Why a wheel and not one setTimeout per mission: a million timers cost a
// million heap entries in libuv and a setTimeout above 2^31-1 ms fires at
// once. Here schedule, cancel and reschedule are O(1) (a level is picked
// from the distance to the due time, a Set holds each slot); one Node timer
// is armed for the next slot that holds anything; an empty wheel arms none.
//
// Due times are wall-clock times (nextRunAt), but Node timers run on the
// monotonic clock. Every wake-up compares the two; when the wall clock
// stepped (NTP, a suspended VM), every entry is re-placed from the new
// "now" and whatever became due fires. While entries exist the timer never
// sleeps longer than maxSleepMs (default 60 s), so a step is noticed within
// that time even when nothing is due for days.
//
// Precision: ticks are `resolutionMs` wide, but when the next tick with
// entries sits on the finest level the timer is armed for the earliest due
// time inside it, and on waking the entries of the following tick whose due
// time has passed fire at once. So a lone entry fires about
// when it is due (timer overshoot only), and the resolution bounds the
// lateness only where entries cascade from a coarser level.

export interface WheelClock {
  /** Wall-clock epoch milliseconds. */
  now(): number;
  /** Monotonic milliseconds (performance.now()). */
  monotonic(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: WheelClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface TimerWheelOptions<K, V> {
  onFire: (key: K, dueMs: number, value: V) => void;
  resolutionMs?: number;
  maxSleepMs?: number;
  /** Disagreement between wall and monotonic time that counts as a step. */
  clockStepToleranceMs?: number;
  clock?: WheelClock;
  onClockStep?: (deltaMs: number) => void;
}

interface Entry<K, V> {
  key: K;
  at: number;
  tick: number;
  value: V;
  /** -1: in `ready`. */
  level: number;
  slot: number;
}

const SLOT_BITS = 6;
const SLOTS = 1 << SLOT_BITS; // 64
const LEVELS = 8; // 64^8 ticks: at 10 ms, about 89,000 years

const POW: number[] = Array.from({ length: LEVELS + 1 }, (_, i) => SLOTS ** i);

export class TimerWheel<K, V = undefined> {
  private readonly entries = new Map<K, Entry<K, V>>();
  private readonly slots: Set<Entry<K, V>>[][] = Array.from({ length: LEVELS }, () =>
    Array.from({ length: SLOTS }, () => new Set<Entry<K, V>>()),
  );
  private readonly levelCounts = new Array<number>(LEVELS).fill(0);
  private ready = new Set<Entry<K, V>>();
  private currentTick: number;
  private timer: unknown = null;
  private armedTick = Number.POSITIVE_INFINITY;
  /** Wall-clock ms the armed timer aims at (<= armedTick * resolution). */
  private armedAtMs = Number.POSITIVE_INFINITY;
  private anchorWall: number;
  private anchorMono: number;
  private closed = false;
  private firing = false;

  readonly resolutionMs: number;
  private readonly maxSleepMs: number;
  private readonly tolerance: number;
  private readonly clock: WheelClock;
  private readonly onFire: (key: K, dueMs: number, value: V) => void;
  private readonly onClockStep: ((deltaMs: number) => void) | undefined;

  constructor(opts: TimerWheelOptions<K, V>) {
    this.resolutionMs = opts.resolutionMs ?? 10;
    this.maxSleepMs = opts.maxSleepMs ?? 60_000;
    this.tolerance = opts.clockStepToleranceMs ?? 1_000;
    this.clock = opts.clock ?? systemClock;
    this.onFire = opts.onFire;
    this.onClockStep = opts.onClockStep;
    this.anchorWall = this.clock.now();
    this.anchorMono = this.clock.monotonic();
    this.currentTick = Math.floor(this.anchorWall / this.resolutionMs);
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  get(key: K): { dueMs: number; value: V } | undefined {
    const e = this.entries.get(key);
    return e ? { dueMs: e.at, value: e.value } : undefined;
  }

  /** Schedules (or moves) `key` to fire at wall-clock `dueMs`. O(1). */
  schedule(key: K, dueMs: number, value: V): void {
    if (this.closed) return;
    if (!Number.isFinite(dueMs)) throw new RangeError(`due time must be a finite number, got ${dueMs}`);
    this.remove(key);
    const e: Entry<K, V> = { key, at: dueMs, tick: Math.ceil(dueMs / this.resolutionMs), value, level: -1, slot: -1 };
    this.entries.set(key, e);
    this.place(e);
    const eventTick = e.level < 0 ? this.currentTick : this.slotStart(e.level, e.slot);
    const sooner = eventTick < this.armedTick || (eventTick === this.armedTick && e.level === 0 && e.at < this.armedAtMs);
    if (sooner && !this.firing) this.arm();
  }

  /** Removes `key`; true when it was scheduled. O(1). */
  cancel(key: K): boolean {
    const had = this.remove(key);
    if (had && this.entries.size === 0 && !this.firing) this.disarm();
    return had;
  }

  /** Every key with its due time; O(n), for resyncs and diagnostics. */
  *keys(): IterableIterator<K> {
    yield* this.entries.keys();
  }

  close(): void {
    this.closed = true;
    this.disarm();
    this.entries.clear();
    this.ready.clear();
    for (const level of this.slots) for (const s of level) s.clear();
    this.levelCounts.fill(0);
  }

  /** For tests and diagnostics: is a Node timer armed, and for when. */
  armedAt(): number | null {
    return this.timer === null ? null : this.armedAtMs;
  }

  private remove(key: K): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.entries.delete(key);
    if (e.level < 0) this.ready.delete(e);
    else {
      this.slots[e.level]![e.slot]!.delete(e);
      this.levelCounts[e.level]! -= 1;
    }
    return true;
  }

  private place(e: Entry<K, V>): void {
    const cur = this.currentTick;
    if (e.tick <= cur) {
      e.level = -1;
      this.ready.add(e);
      return;
    }
    let level = LEVELS - 1;
    for (let i = 0; i < LEVELS; i++) {
      if (Math.floor(e.tick / POW[i + 1]!) === Math.floor(cur / POW[i + 1]!)) {
        level = i;
        break;
      }
    }
    const slot = Math.floor(e.tick / POW[level]!) % SLOTS;
    e.level = level;
    e.slot = slot;
    this.slots[level]![slot]!.add(e);
    this.levelCounts[level]! += 1;
  }

  /** First tick of `slot` at `level` inside the current parent window. */
  private slotStart(level: number, slot: number): number {
    return (Math.floor(this.currentTick / POW[level + 1]!) * SLOTS + slot) * POW[level]!;
  }

  /** The next tick at which something fires or cascades; bounded scan. */
  private nextEventTick(): number | null {
    if (this.ready.size > 0) return this.currentTick;
    let best: number | null = null;
    for (let i = 0; i < LEVELS; i++) {
      if (this.levelCounts[i] === 0) continue;
      const curSlot = Math.floor(this.currentTick / POW[i]!) % SLOTS;
      for (let s = curSlot + 1; s < SLOTS; s++) {
        if (this.slots[i]![s]!.size > 0) {
          const start = this.slotStart(i, s);
          if (best === null || start < best) best = start;
          break;
        }
      }
    }
    return best;
  }

  private advanceTo(targetTick: number): void {
    for (;;) {
      const next = this.nextEventTick();
      if (next === null || next > targetTick) break;
      if (next > this.currentTick) this.currentTick = next;
      for (let i = LEVELS - 1; i >= 1; i--) {
        if (this.levelCounts[i] === 0) continue;
        const slot = Math.floor(next / POW[i]!) % SLOTS;
        if (this.slotStart(i, slot) !== next) continue;
        const bucket = this.slots[i]![slot]!;
        if (bucket.size === 0) continue;
        const moving = [...bucket];
        bucket.clear();
        this.levelCounts[i]! -= moving.length;
        for (const e of moving) this.place(e);
      }
      const slot0 = next % SLOTS;
      const bucket0 = this.slots[0]![slot0]!;
      if (bucket0.size > 0 && this.slotStart(0, slot0) === next) {
        for (const e of bucket0) {
          e.level = -1;
          this.ready.add(e);
        }
        this.levelCounts[0]! -= bucket0.size;
        bucket0.clear();
      }
      if (this.ready.size > 0) this.fireReady();
    }
    if (targetTick > this.currentTick) this.currentTick = targetTick;
  }

  private fireReady(): void {
    const due = [...this.ready].sort((a, b) => a.at - b.at);
    this.ready = new Set();
    this.firing = true;
    try {
      for (const e of due) {
        if (this.entries.get(e.key) !== e) continue; // cancelled by an earlier callback
        this.entries.delete(e.key);
        this.onFire(e.key, e.at, e.value);
      }
    } finally {
      this.firing = false;
    }
  }

  private checkClockStep(): void {
    const wall = this.clock.now();
    const mono = this.clock.monotonic();
    const expected = this.anchorWall + (mono - this.anchorMono);
    const delta = wall - expected;
    this.anchorWall = wall;
    this.anchorMono = mono;
    if (Math.abs(delta) <= this.tolerance) return;
    // Re-anchor: every entry is placed again relative to the new now.
    const all = [...this.entries.values()];
    this.ready.clear();
    for (const level of this.slots) for (const s of level) s.clear();
    this.levelCounts.fill(0);
    this.currentTick = Math.floor(wall / this.resolutionMs);
    for (const e of all) this.place(e);
    this.onClockStep?.(delta);
  }

  private onTimer = (): void => {
    this.timer = null;
    this.armedTick = Number.POSITIVE_INFINITY;
    if (this.closed) return;
    this.checkClockStep();
    const now = this.clock.now();
    this.advanceTo(Math.floor(now / this.resolutionMs));
    this.fireDueInNextTick(now);
    this.arm();
  };

  /** The level-0 bucket holding `tick`, when that tick is in the current window and has entries. */
  private levelZeroBucket(tick: number): Set<Entry<K, V>> | null {
    const slot = tick % SLOTS;
    if (this.slotStart(0, slot) !== tick) return null; // beyond this window: it cascades at the boundary
    const bucket = this.slots[0]![slot]!;
    return bucket.size > 0 ? bucket : null;
  }

  /** Fires entries of the imminent tick whose due time has already come. */
  private fireDueInNextTick(now: number): void {
    const bucket = this.levelZeroBucket(this.currentTick + 1);
    if (!bucket) return;
    for (const e of bucket) {
      if (e.at > now) continue;
      bucket.delete(e);
      this.levelCounts[0]! -= 1;
      e.level = -1;
      this.ready.add(e);
    }
    if (this.ready.size > 0) this.fireReady();
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.armedTick = Number.POSITIVE_INFINITY;
    this.armedAtMs = Number.POSITIVE_INFINITY;
  }

  private arm(): void {
    this.disarm();
    if (this.closed || this.entries.size === 0) return;
    const next = this.nextEventTick();
    if (next === null) return;
    const now = this.clock.now();
    let target = next * this.resolutionMs;
    if (next > this.currentTick) {
      // aim at the earliest due time inside that tick, not at its end
      const bucket = this.levelZeroBucket(next);
      if (bucket) for (const e of bucket) if (e.at < target) target = e.at;
    }
    const delay = Math.min(this.maxSleepMs, Math.max(0, target - now));
    this.armedTick = Math.min(next, Math.ceil((now + delay) / this.resolutionMs));
    this.armedAtMs = now + delay;
    this.timer = this.clock.setTimer(this.onTimer, delay);
  }
}
