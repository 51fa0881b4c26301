// What the reactor remembers about each mission it schedules, as columns of
// typed arrays indexed by a slot: snapshot id, version, the due time the
// armed wheel entry stands for, partition, agent ref and user ref. A slot
// is a small integer, so the timer wheel keys on it directly.
//
// Why columns and not an object per mission: at a million missions an
// object, its boxed numbers and the Map entries pointing at it cost 300+
// bytes each and a garbage collector that traces all of them; here a
// mission costs 45 bytes of columns plus one Map entry (sid -> slot), and
// the columns hold no pointers at all (docs/performance.md has the figures).
//
// It holds ids and numbers only, never a record, and does no I/O.

/** Marks "no agent" / "no user known" in the ref columns (refs are >= 0). */
export const NO_REF = -1;

export class MissionTable {
  private readonly slotBySid = new Map<number, number>();
  private readonly free: number[] = [];
  private high = 0;
  sid: Float64Array;
  version: Float64Array;
  /** The due time of the run the mission's wheel entry stands for. */
  dueMs: Float64Array;
  agentRef: Float64Array;
  userRef: Float64Array;
  partition: Int8Array;
  /** Load generation that last saw the mission (full resyncs drop the rest). */
  seen: Uint32Array;

  constructor(initialCapacity = 1024) {
    const cap = Math.max(16, initialCapacity);
    this.sid = new Float64Array(cap).fill(-1);
    this.version = new Float64Array(cap);
    this.dueMs = new Float64Array(cap);
    this.agentRef = new Float64Array(cap).fill(NO_REF);
    this.userRef = new Float64Array(cap).fill(NO_REF);
    this.partition = new Int8Array(cap).fill(-1);
    this.seen = new Uint32Array(cap);
  }

  get size(): number {
    return this.slotBySid.size;
  }

  slotOf(sid: number): number | undefined {
    return this.slotBySid.get(sid);
  }

  /** The mission's slot, made when it is new (version -1 = nothing known yet). */
  ensure(sid: number): number {
    const known = this.slotBySid.get(sid);
    if (known !== undefined) return known;
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.high++;
      if (slot >= this.sid.length) this.grow();
    }
    this.slotBySid.set(sid, slot);
    this.sid[slot] = sid;
    this.version[slot] = -1;
    this.dueMs[slot] = 0;
    this.agentRef[slot] = NO_REF;
    this.userRef[slot] = NO_REF;
    this.partition[slot] = -1;
    this.seen[slot] = 0;
    return slot;
  }

  /** Forgets the mission; its slot is reused. The caller has cancelled its wheel entry. */
  release(sid: number): number | undefined {
    const slot = this.slotBySid.get(sid);
    if (slot === undefined) return undefined;
    this.slotBySid.delete(sid);
    this.sid[slot] = -1;
    this.free.push(slot);
    return slot;
  }

  /** Snapshot ids of every mission held; O(n). */
  *sids(): IterableIterator<number> {
    yield* this.slotBySid.keys();
  }

  private grow(): void {
    const cap = this.sid.length * 2;
    const grown = <T extends Float64Array | Int8Array | Uint32Array>(old: T, make: (n: number) => T, fill?: number): T => {
      const a = make(cap);
      if (fill !== undefined) a.fill(fill);
      a.set(old as never);
      return a;
    };
    this.sid = grown(this.sid, (n) => new Float64Array(n), -1);
    this.version = grown(this.version, (n) => new Float64Array(n));
    this.dueMs = grown(this.dueMs, (n) => new Float64Array(n));
    this.agentRef = grown(this.agentRef, (n) => new Float64Array(n), NO_REF);
    this.userRef = grown(this.userRef, (n) => new Float64Array(n), NO_REF);
    this.partition = grown(this.partition, (n) => new Int8Array(n), -1);
    this.seen = grown(this.seen, (n) => new Uint32Array(n));
  }
}
