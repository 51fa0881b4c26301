// A hierarchical timer wheel: holds every mission's next run in memory and
// fires each entry no earlier than its due time and within one resolution
// step after it. Pure: time comes from an injected clock, so tests drive it
// with a fake one. It must never do I/O and never arm more than one timer.
//
// Why a wheel and not one setTimeout per mission: a million timers cost a
// million heap entries in libuv and a setTimeout above 2^31-1 ms fires at
// once. Here schedule, cancel and reschedule are O(1) (a level is picked
// from the distance to the due time, each slot is an intrusive doubly
// linked list); one Node timer is armed for the next slot that holds
// anything; an empty wheel arms none.
//
// Memory: keys are small non-negative integers (the reactor's mission
// table slots), and an entry is a due time in a Float64Array plus two list
// links and a bucket number in typed arrays: 18 bytes, no object, nothing
// for the garbage collector to trace. A million entries cost 18 MB.
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

/**
 * Node's timers. A wake-up that is due now (an entry already due when it
 * is scheduled: a mission due when its notification arrives) runs on
 * setImmediate, at the end of this turn of the event loop, not on a
 * setTimeout(0), which Node rounds up to a millisecond (issue 30: that was
 * a quarter of the commit → LLM request latency).
 */
export const systemClock: WheelClock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: (fn, ms) => {
    if (ms <= 0) {
      const i = setImmediate(fn);
      i.unref?.();
      return i;
    }
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimer: (h) => {
    if (h instanceof Object && h.constructor?.name === 'Immediate') clearImmediate(h as NodeJS.Immediate);
    else clearTimeout(h as NodeJS.Timeout);
  },
};

export interface TimerWheelOptions {
  /** Called once per entry when it is due; the entry is gone by then (it may schedule itself again). */
  onFire: (key: number, dueMs: number) => void;
  resolutionMs?: number;
  maxSleepMs?: number;
  /** Disagreement between wall and monotonic time that counts as a step. */
  clockStepToleranceMs?: number;
  clock?: WheelClock;
  onClockStep?: (deltaMs: number) => void;
  /** Keys expected (arrays grow by half past it). */
  initialCapacity?: number;
  /**
   * Entries fired per pass at most; the rest fire on the next turn of the
   * event loop, so 100,000 entries due at once never block it for long.
   */
  maxFirePerPass?: number;
}

const SLOT_BITS = 6;
const SLOTS = 1 << SLOT_BITS; // 64
const LEVELS = 8; // 64^8 ticks: at 10 ms, about 89,000 years
const POW: number[] = Array.from({ length: LEVELS + 1 }, (_, i) => SLOTS ** i);

/** Bucket numbers: level * SLOTS + slot for the levels, then these. */
const READY = LEVELS * SLOTS;
const BUCKETS = READY + 1;
const ABSENT = -1;
/** Taken out of `ready` for the firing pass that runs now. */
const FIRING = -2;
/**
 * Ready, sorted, waiting in the backlog for a later pass. A large overdue
 * set is sorted once and fired a pass at a time from this array, instead
 * of being detached, sorted and re-linked by every pass (which made
 * 1,000,000 overdue entries take 57 s of event loop: issue 18, item 8).
 */
const BACKLOG = -3;
const NIL = -1;

export class TimerWheel {
  private at: Float64Array;
  private next: Int32Array;
  private prev: Int32Array;
  private bucketOf: Int16Array;
  private readonly heads = new Int32Array(BUCKETS).fill(NIL);
  private readonly counts = new Int32Array(BUCKETS);
  private readonly levelCounts = new Array<number>(LEVELS).fill(0);
  private count = 0;
  /** ready keys sorted by due time, fired from `backlogPos` on; stale entries (moved, cancelled) are skipped */
  private backlog: number[] = [];
  private backlogPos = 0;
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
  private readonly onFire: (key: number, dueMs: number) => void;
  private readonly onClockStep: ((deltaMs: number) => void) | undefined;
  private readonly maxFirePerPass: number;

  constructor(opts: TimerWheelOptions) {
    this.maxFirePerPass = opts.maxFirePerPass ?? 5_000;
    this.resolutionMs = opts.resolutionMs ?? 10;
    this.maxSleepMs = opts.maxSleepMs ?? 60_000;
    this.tolerance = opts.clockStepToleranceMs ?? 1_000;
    this.clock = opts.clock ?? systemClock;
    this.onFire = opts.onFire;
    this.onClockStep = opts.onClockStep;
    const cap = Math.max(16, opts.initialCapacity ?? 1024);
    this.at = new Float64Array(cap);
    this.next = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.bucketOf = new Int16Array(cap).fill(ABSENT);
    this.anchorWall = this.clock.now();
    this.anchorMono = this.clock.monotonic();
    this.currentTick = Math.floor(this.anchorWall / this.resolutionMs);
  }

  get size(): number {
    return this.count;
  }

  has(key: number): boolean {
    return key < this.bucketOf.length && this.bucketOf[key] !== ABSENT;
  }

  /** When `key` fires, or undefined when it is not scheduled. */
  dueOf(key: number): number | undefined {
    return this.has(key) ? this.at[key] : undefined;
  }

  /** Makes room for keys below `n` at once (before a large load). */
  reserve(n: number): void {
    if (n > this.bucketOf.length) this.grow(n, true);
  }

  /** Wall-clock now, by the clock this wheel fires by (the injected one in tests). */
  now(): number {
    return this.clock.now();
  }

  /** Schedules (or moves) `key` to fire at wall-clock `dueMs`. O(1). */
  schedule(key: number, dueMs: number): void {
    if (this.closed) return;
    if (!Number.isInteger(key) || key < 0 || key > 0x7fffffff) throw new RangeError(`wheel keys are integers in [0, 2^31), got ${key}`);
    if (!Number.isFinite(dueMs)) throw new RangeError(`due time must be a finite number, got ${dueMs}`);
    if (key >= this.bucketOf.length) this.grow(key + 1);
    this.remove(key);
    this.at[key] = dueMs;
    this.count += 1;
    const b = this.place(key);
    const level = b === READY ? -1 : Math.floor(b / SLOTS);
    const eventTick = level < 0 ? this.currentTick : this.slotStart(level, b % SLOTS);
    const sooner = eventTick < this.armedTick || (eventTick === this.armedTick && level === 0 && dueMs < this.armedAtMs);
    if (sooner && !this.firing) this.arm();
  }

  /** Removes `key`; true when it was scheduled. O(1). */
  cancel(key: number): boolean {
    const had = this.remove(key);
    if (had && this.count === 0 && !this.firing) this.disarm();
    return had;
  }

  close(): void {
    this.closed = true;
    this.disarm();
    this.bucketOf.fill(ABSENT);
    this.heads.fill(NIL);
    this.counts.fill(0);
    this.levelCounts.fill(0);
    this.count = 0;
    this.backlog = [];
    this.backlogPos = 0;
  }

  /** For tests and diagnostics: is a Node timer armed, and for when. */
  armedAt(): number | null {
    return this.timer === null ? null : this.armedAtMs;
  }

  private grow(min: number, exact = false): void {
    let cap = this.bucketOf.length;
    if (exact) cap = Math.max(cap, min);
    else while (cap < min) cap = Math.ceil(cap * 1.5); // by half: a million and one keys must not cost two million
    const at = new Float64Array(cap);
    at.set(this.at);
    const next = new Int32Array(cap);
    next.set(this.next);
    const prev = new Int32Array(cap);
    prev.set(this.prev);
    const bucketOf = new Int16Array(cap).fill(ABSENT);
    bucketOf.set(this.bucketOf);
    this.at = at;
    this.next = next;
    this.prev = prev;
    this.bucketOf = bucketOf;
  }

  private link(b: number, key: number): void {
    const head = this.heads[b]!;
    this.next[key] = head;
    this.prev[key] = NIL;
    if (head !== NIL) this.prev[head] = key;
    this.heads[b] = key;
    this.bucketOf[key] = b;
    this.counts[b]! += 1;
    if (b < READY) this.levelCounts[Math.floor(b / SLOTS)]! += 1;
  }

  private unlink(key: number): void {
    const b = this.bucketOf[key]!;
    const n = this.next[key]!;
    const p = this.prev[key]!;
    if (p !== NIL) this.next[p] = n;
    else this.heads[b] = n;
    if (n !== NIL) this.prev[n] = p;
    this.counts[b]! -= 1;
    if (b < READY) this.levelCounts[Math.floor(b / SLOTS)]! -= 1;
  }

  /** Takes every key out of bucket `b` (they keep their bucket number until placed again). */
  private detach(b: number): number[] {
    const out: number[] = [];
    for (let k = this.heads[b]!; k !== NIL; k = this.next[k]!) out.push(k);
    this.heads[b] = NIL;
    if (b < READY) this.levelCounts[Math.floor(b / SLOTS)]! -= this.counts[b]!;
    this.counts[b] = 0;
    return out;
  }

  private remove(key: number): boolean {
    if (key >= this.bucketOf.length) return false;
    const b = this.bucketOf[key]!;
    if (b === ABSENT) return false;
    if (b !== FIRING && b !== BACKLOG) this.unlink(key);
    this.bucketOf[key] = ABSENT;
    this.count -= 1;
    return true;
  }

  /** Puts `key` (its due time set) into the bucket its distance picks; returns the bucket. */
  private place(key: number): number {
    const cur = this.currentTick;
    const tick = Math.ceil(this.at[key]! / this.resolutionMs);
    if (tick <= cur) {
      this.link(READY, key);
      return READY;
    }
    let level = LEVELS - 1;
    for (let i = 0; i < LEVELS; i++) {
      if (Math.floor(tick / POW[i + 1]!) === Math.floor(cur / POW[i + 1]!)) {
        level = i;
        break;
      }
    }
    const b = level * SLOTS + (Math.floor(tick / POW[level]!) % SLOTS);
    this.link(b, key);
    return b;
  }

  /** First tick of `slot` at `level` inside the current parent window. */
  private slotStart(level: number, slot: number): number {
    return (Math.floor(this.currentTick / POW[level + 1]!) * SLOTS + slot) * POW[level]!;
  }

  /** The next tick at which something fires or cascades; bounded scan. */
  private nextEventTick(): number | null {
    if (this.counts[READY]! > 0 || this.backlogPos < this.backlog.length) return this.currentTick;
    let best: number | null = null;
    for (let i = 0; i < LEVELS; i++) {
      if (this.levelCounts[i] === 0) continue;
      const curSlot = Math.floor(this.currentTick / POW[i]!) % SLOTS;
      for (let s = curSlot + 1; s < SLOTS; s++) {
        if (this.counts[i * SLOTS + s]! > 0) {
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
        const b = i * SLOTS + slot;
        if (this.counts[b] === 0) continue;
        for (const k of this.detach(b)) this.place(k);
      }
      const slot0 = next % SLOTS;
      if (this.counts[slot0]! > 0 && this.slotStart(0, slot0) === next) {
        for (const k of this.detach(slot0)) this.link(READY, k);
      }
      if (this.counts[READY]! > 0 || this.backlogPos < this.backlog.length) {
        this.fireReady();
        if (this.counts[READY]! > 0 || this.backlogPos < this.backlog.length) return; // a pass was cut short: the rest after a turn of the event loop
      }
    }
    if (targetTick > this.currentTick) this.currentTick = targetTick;
  }

  /** Ready keys that arrived since the last pass, sorted and merged into the backlog (O(n) merge, one sort of the new ones). */
  private mergeReady(): void {
    if (this.counts[READY] === 0) return;
    const fresh = this.detach(READY);
    fresh.sort((a, b) => this.at[a]! - this.at[b]!);
    let merged: number[];
    if (this.backlogPos >= this.backlog.length) {
      merged = fresh;
    } else {
      const old = this.backlog;
      merged = new Array<number>(old.length - this.backlogPos + fresh.length);
      let i = this.backlogPos;
      let j = 0;
      let o = 0;
      while (i < old.length && j < fresh.length) merged[o++] = this.at[fresh[j]!]! < this.at[old[i]!]! ? fresh[j++]! : old[i++]!;
      while (i < old.length) merged[o++] = old[i++]!;
      while (j < fresh.length) merged[o++] = fresh[j++]!;
    }
    for (const k of fresh) this.bucketOf[k] = BACKLOG;
    this.backlog = merged;
    this.backlogPos = 0;
  }

  private fireReady(): void {
    this.mergeReady();
    // The earliest maxFirePerPass live entries now; the rest at the next
    // turn (arm() sees the backlog and sets a 0 ms timer).
    const due: number[] = [];
    while (this.backlogPos < this.backlog.length && due.length < this.maxFirePerPass) {
      const k = this.backlog[this.backlogPos++]!;
      if (this.bucketOf[k] !== BACKLOG) continue; // cancelled or moved since it was sorted
      this.bucketOf[k] = FIRING;
      due.push(k);
    }
    if (this.backlogPos >= this.backlog.length) {
      this.backlog = [];
      this.backlogPos = 0;
    }
    this.firing = true;
    try {
      for (const k of due) {
        if (this.bucketOf[k] !== FIRING) continue; // cancelled or moved by an earlier callback
        this.bucketOf[k] = ABSENT;
        this.count -= 1;
        this.onFire(k, this.at[k]!);
      }
    } finally {
      // a callback that threw leaves the rest of this pass for the next one
      for (const k of due) if (this.bucketOf[k] === FIRING) this.link(READY, k);
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
    const all: number[] = [];
    for (let b = 0; b < BUCKETS; b++) if (this.counts[b]! > 0) for (const k of this.detach(b)) all.push(k);
    for (let i = this.backlogPos; i < this.backlog.length; i++) if (this.bucketOf[this.backlog[i]!] === BACKLOG) all.push(this.backlog[i]!);
    this.backlog = [];
    this.backlogPos = 0;
    this.currentTick = Math.floor(wall / this.resolutionMs);
    for (const k of all) this.place(k);
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

  /** The level-0 bucket holding `tick`, when that tick is in the current window and has entries; else -1. */
  private levelZeroBucket(tick: number): number {
    const slot = tick % SLOTS;
    if (this.slotStart(0, slot) !== tick) return -1; // beyond this window: it cascades at the boundary
    return this.counts[slot]! > 0 ? slot : -1;
  }

  /** Fires entries of the imminent tick whose due time has already come. */
  private fireDueInNextTick(now: number): void {
    const b = this.levelZeroBucket(this.currentTick + 1);
    if (b < 0) return;
    for (let k = this.heads[b]!; k !== NIL; ) {
      const n = this.next[k]!;
      if (this.at[k]! <= now) {
        this.unlink(k);
        this.link(READY, k);
      }
      k = n;
    }
    if (this.counts[READY]! > 0 || this.backlogPos < this.backlog.length) this.fireReady();
  }

  private disarm(): void {
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    this.armedTick = Number.POSITIVE_INFINITY;
    this.armedAtMs = Number.POSITIVE_INFINITY;
  }

  private arm(): void {
    this.disarm();
    if (this.closed || this.count === 0) return;
    const next = this.nextEventTick();
    if (next === null) return;
    const now = this.clock.now();
    let target = next * this.resolutionMs;
    if (next > this.currentTick) {
      // aim at the earliest due time inside that tick, not at its end
      const b = this.levelZeroBucket(next);
      if (b >= 0) for (let k = this.heads[b]!; k !== NIL; k = this.next[k]!) if (this.at[k]! < target) target = this.at[k]!;
    }
    const delay = Math.min(this.maxSleepMs, Math.max(0, target - now));
    this.armedTick = Math.min(next, Math.ceil((now + delay) / this.resolutionMs));
    this.armedAtMs = now + delay;
    this.timer = this.clock.setTimer(this.onTimer, delay);
  }
}
