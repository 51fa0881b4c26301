// Due runs waiting for a slot, in due order (a binary min-heap). Holds only
// (sid, due) pairs: records are read when the run is claimed, so 10,000
// queued runs cost a few hundred kilobytes.

export interface QueuedRun {
  sid: number;
  dueMs: number;
}

export class RunQueue {
  private heap: QueuedRun[] = [];
  private readonly keys = new Set<string>();

  static key(sid: number, dueMs: number): string {
    return `${sid}@${dueMs}`;
  }

  get size(): number {
    return this.heap.length;
  }

  has(sid: number, dueMs: number): boolean {
    return this.keys.has(RunQueue.key(sid, dueMs));
  }

  push(run: QueuedRun): boolean {
    const k = RunQueue.key(run.sid, run.dueMs);
    if (this.keys.has(k)) return false;
    this.keys.add(k);
    const h = this.heap;
    h.push(run);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.dueMs <= h[i]!.dueMs) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
    return true;
  }

  pop(): QueuedRun | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.dueMs < h[m]!.dueMs) m = l;
        if (r < h.length && h[r]!.dueMs < h[m]!.dueMs) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    this.keys.delete(RunQueue.key(top.sid, top.dueMs));
    return top;
  }
}
