// Due runs waiting for a slot, served round-robin: across users first, then
// across the agents of a user (a user's missions without an agent form one
// more lane), and in due order inside a lane. So when every user's "daily
// at 9" is due at 09:00:00, one user with a thousand missions delays the
// others by one run each, not by a thousand.
//
// Holds only (sid, due) numbers and the lanes they wait in: records are
// read when a run is claimed. A mission waits with one due time at most: a
// newer due time for a mission still waiting replaces the older one (the
// claim would refuse the older one anyway, since the snapshot moved on),
// and `push` reports the one it replaced. Pure; no timers, no I/O.

export interface QueuedRun {
  sid: number;
  dueMs: number;
}

/** One agent's (or the agentless) runs of a user: a min-heap by due time, then sid. */
interface Lane {
  ref: number;
  sids: number[];
  dues: number[];
}

/**
 * A user with waiting runs: its lanes, taken in turn. Kept small on
 * purpose (a burst can queue one run each for 100,000 users): no Map or
 * ring per user, and a new lane's arrays hold exactly its first run.
 */
interface UserLanes {
  ref: number;
  lanes: Lane[];
  turn: number;
  /** runs waiting */
  count: number;
}

/** A FIFO with O(1) amortised push and shift (an array and a head index). */
class Ring<T> {
  private items: T[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head]!;
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
}

export class FairQueue {
  private readonly users = new Map<number, UserLanes>();
  private readonly order = new Ring<UserLanes>();
  /**
   * Users that arrived since the last pop. They join the round at its end,
   * those with the fewest waiting runs first: the order inside a round is
   * free, and this one lets the small users of a burst finish soonest.
   */
  private fresh: UserLanes[] = [];
  /** sid -> the due time it waits with */
  private readonly waiting = new Map<number, number>();

  get size(): number {
    return this.waiting.size;
  }

  has(sid: number, dueMs: number): boolean {
    return this.waiting.get(sid) === dueMs;
  }

  /**
   * Queues (sid, due) in the lane of (user, agent); refs < 0 = unknown user
   * or no agent. Returns the due time it replaced, `null` when it replaced
   * none, or `false` when exactly this run already waits.
   */
  push(sid: number, dueMs: number, userRef: number, agentRef: number): number | null | false {
    const before = this.waiting.get(sid);
    if (before === dueMs) return false;
    this.waiting.set(sid, dueMs);
    let user = this.users.get(userRef);
    if (!user) {
      user = { ref: userRef, lanes: [{ ref: agentRef, sids: [sid], dues: [dueMs] }], turn: 0, count: 1 };
      this.users.set(userRef, user);
      this.fresh.push(user);
    } else {
      user.count += 1;
      const lane = user.lanes.find((l) => l.ref === agentRef);
      if (lane) heapPush(lane, sid, dueMs);
      else user.lanes.push({ ref: agentRef, sids: [sid], dues: [dueMs] });
    }
    // A replaced entry stays in its heap and is skipped when it surfaces.
    return before === undefined ? null : before;
  }

  /** The next run: the next user in turn, that user's next lane in turn, its earliest run. */
  pop(): QueuedRun | undefined {
    if (this.fresh.length > 0) {
      for (const u of this.fresh.sort((a, b) => a.count - b.count)) this.order.push(u);
      this.fresh = [];
    }
    while (this.waiting.size > 0) {
      const user = this.order.shift();
      if (!user) return undefined;
      let run: QueuedRun | undefined;
      while (!run && user.lanes.length > 0) {
        const at = user.turn % user.lanes.length;
        const lane = user.lanes[at]!;
        while (lane.sids.length > 0 && !run) {
          const r = heapPop(lane);
          user.count -= 1;
          if (this.waiting.get(r.sid) === r.dueMs) run = r; // else replaced meanwhile
        }
        if (lane.sids.length === 0) user.lanes.splice(at, 1); // the next lane moves into its place
        else user.turn = at + 1;
      }
      if (user.lanes.length > 0) this.order.push(user);
      else this.users.delete(user.ref);
      if (run) {
        this.waiting.delete(run.sid);
        return run;
      }
    }
    return undefined;
  }
}

function less(l: Lane, i: number, j: number): boolean {
  return l.dues[i]! < l.dues[j]! || (l.dues[i] === l.dues[j] && l.sids[i]! < l.sids[j]!);
}

function swap(l: Lane, i: number, j: number): void {
  const s = l.sids[i]!;
  l.sids[i] = l.sids[j]!;
  l.sids[j] = s;
  const d = l.dues[i]!;
  l.dues[i] = l.dues[j]!;
  l.dues[j] = d;
}

function heapPush(l: Lane, sid: number, dueMs: number): void {
  l.sids.push(sid);
  l.dues.push(dueMs);
  let i = l.sids.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!less(l, i, p)) break;
    swap(l, i, p);
    i = p;
  }
}

function heapPop(l: Lane): QueuedRun {
  const top = { sid: l.sids[0]!, dueMs: l.dues[0]! };
  const lastSid = l.sids.pop()!;
  const lastDue = l.dues.pop()!;
  if (l.sids.length > 0) {
    l.sids[0] = lastSid;
    l.dues[0] = lastDue;
    let i = 0;
    for (;;) {
      const a = 2 * i + 1;
      const b = a + 1;
      let m = i;
      if (a < l.sids.length && less(l, a, m)) m = a;
      if (b < l.sids.length && less(l, b, m)) m = b;
      if (m === i) break;
      swap(l, i, m);
      i = m;
    }
  }
  return top;
}
