// What the reactor remembers about each mission it schedules, as columns of
// typed arrays indexed by a slot: snapshot id, version, partition, agent
// ref and user ref. A slot is a small integer, so the timer wheel keys on
// it directly (the wheel holds the due time).
//
// Why columns and not an object per mission: at a million missions an
// object, its boxed numbers and the Map entries pointing at it cost 300+
// bytes each and a garbage collector that traces all of them. Here a
// mission costs 34 bytes of columns plus 4 to 8 bytes in the sid -> slot
// index, an open-addressing hash that stores slots only (the sid it is
// compared with is the column). Nothing here holds a pointer, so the
// garbage collector never walks it (docs/performance.md has the figures).
//
// It holds ids and numbers only, never a record, and does no I/O.

/** Marks "no agent" / "no user known" in the ref columns (refs are >= 0). */
export const NO_REF = -1;
const EMPTY = -1;

export class MissionTable {
  private count = 0;
  private readonly free: number[] = [];
  private high = 0;
  /** open addressing, linear probing: slot or EMPTY; capacity a power of two, at most half full */
  private index: Int32Array;
  sid: Float64Array;
  version: Float64Array;
  agentRef: Float64Array;
  userRef: Float64Array;
  partition: Int8Array;
  /** Set by loads and notifications; a full resync clears it first and drops the missions it did not set. */
  seen: Uint8Array;

  constructor(initialCapacity = 1024) {
    const cap = Math.max(16, initialCapacity);
    this.sid = new Float64Array(cap).fill(-1);
    this.version = new Float64Array(cap);
    this.agentRef = new Float64Array(cap).fill(NO_REF);
    this.userRef = new Float64Array(cap).fill(NO_REF);
    this.partition = new Int8Array(cap).fill(-1);
    this.seen = new Uint8Array(cap);
    let icap = 16;
    while (icap < cap * 2) icap *= 2;
    this.index = new Int32Array(icap).fill(EMPTY);
  }

  get size(): number {
    return this.count;
  }

  /**
   * A row of a schedule load for `slot`: marks it seen; when the row is not
   * older than what a notification already told (its version), its agent
   * and user refs and version replace the slot's and true is returned (arm
   * it); an older row changes nothing else.
   */
  applyLoaded(slot: number, row: { partition: number; version: number; agentRef: number; userRef: number }): boolean {
    this.seen[slot] = 1;
    this.partition[slot] = row.partition;
    if (this.version[slot]! > row.version) return false;
    this.agentRef[slot] = row.agentRef;
    this.userRef[slot] = row.userRef;
    this.version[slot] = row.version;
    return true;
  }

  private home(sid: number): number {
    // sids are integers below 2^53: mix both halves
    const lo = sid >>> 0;
    const hi = Math.floor(sid / 4_294_967_296) >>> 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 0 & (this.index.length - 1);
  }

  /** Position in the index holding sid's slot, or the empty position where it would go. */
  private find(sid: number): number {
    const mask = this.index.length - 1;
    for (let i = this.home(sid); ; i = (i + 1) & mask) {
      const slot = this.index[i]!;
      if (slot === EMPTY || this.sid[slot] === sid) return i;
    }
  }

  slotOf(sid: number): number | undefined {
    const slot = this.index[this.find(sid)]!;
    return slot === EMPTY ? undefined : slot;
  }

  /** The mission's slot, made when it is new (version -1 = nothing known yet). */
  ensure(sid: number): number {
    const at = this.find(sid);
    if (this.index[at] !== EMPTY) return this.index[at]!;
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.high++;
      if (slot >= this.sid.length) this.grow();
    }
    this.sid[slot] = sid;
    this.version[slot] = -1;
    this.agentRef[slot] = NO_REF;
    this.userRef[slot] = NO_REF;
    this.partition[slot] = -1;
    this.seen[slot] = 0;
    this.count += 1;
    if (this.count * 2 > this.index.length) this.rehash(this.index.length * 2);
    else this.index[at] = slot;
    return slot;
  }

  /** Forgets the mission; its slot is reused. The caller has cancelled its wheel entry. */
  release(sid: number): number | undefined {
    const mask = this.index.length - 1;
    let i = this.find(sid);
    const slot = this.index[i]!;
    if (slot === EMPTY) return undefined;
    // backward-shift deletion keeps every probe chain unbroken
    for (let j = (i + 1) & mask; this.index[j] !== EMPTY; j = (j + 1) & mask) {
      const h = this.home(this.sid[this.index[j]!]!);
      if (((j - h) & mask) >= ((j - i) & mask)) {
        this.index[i] = this.index[j]!;
        i = j;
      }
    }
    this.index[i] = EMPTY;
    this.sid[slot] = -1;
    this.free.push(slot);
    this.count -= 1;
    return slot;
  }

  /** Every slot that holds a mission; O(capacity). Releasing the slot just yielded is safe. */
  *slots(): IterableIterator<number> {
    for (let slot = 0; slot < this.high; slot++) if (this.sid[slot]! >= 0) yield slot;
  }

  private rehash(size: number): void {
    this.index = new Int32Array(size).fill(EMPTY);
    for (let slot = 0; slot < this.high; slot++) if (this.sid[slot]! >= 0) this.index[this.find(this.sid[slot]!)] = slot;
  }

  /**
   * Makes room for `n` missions at once (before a load, from the
   * database's estimate), so the load does not grow the columns step by
   * step with an old and a new copy alive at each step.
   */
  reserve(n: number): void {
    if (n > this.sid.length) this.grow(n);
    let size = this.index.length;
    while (n * 2 > size) size *= 2;
    if (size > this.index.length) this.rehash(size);
  }

  // Grows by half, not double: a million and one missions must not cost two million slots.
  private grow(min = 0): void {
    const cap = Math.max(min, Math.ceil(this.sid.length * 1.5));
    const grown = <T extends Float64Array | Int8Array | Uint8Array>(old: T, make: (n: number) => T, fill?: number): T => {
      const a = make(cap);
      if (fill !== undefined) a.fill(fill);
      a.set(old as never);
      return a;
    };
    this.sid = grown(this.sid, (n) => new Float64Array(n), -1);
    this.version = grown(this.version, (n) => new Float64Array(n));
    this.agentRef = grown(this.agentRef, (n) => new Float64Array(n), NO_REF);
    this.userRef = grown(this.userRef, (n) => new Float64Array(n), NO_REF);
    this.partition = grown(this.partition, (n) => new Int8Array(n), -1);
    this.seen = grown(this.seen, (n) => new Uint8Array(n));
  }
}
