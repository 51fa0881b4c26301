// Group commit for the statements every run makes (issue 30): items
// submitted while a batch is on its way, or in the same turn of the event
// loop, go together in the next one. Nothing waits for a timer: an item
// submitted when nothing is in flight leaves at the end of this microtask
// queue, so a lone run pays no latency for the batching; under a burst
// one round trip carries many runs. One batch in flight at a time per
// batcher. A failed batch fails each of its items with the same error, as
// if each had failed alone; it never throws past its items.

export class Batcher<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = false;
  private scheduled = false;

  constructor(
    /** Sends one batch; answers one output per item, in order. */
    private readonly send: (items: I[]) => Promise<O[]>,
    private readonly maxBatch = 32,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running && !this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const out = await this.send(batch.map((b) => b.item));
          if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} answered ${out.length} results`);
          batch.forEach((b, i) => b.resolve(out[i]!));
        } catch (error) {
          for (const b of batch) b.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** One batcher per key object (a pool or a Kysely instance), made on first use. */
export function batcherOf<K extends object, I, O>(cache: WeakMap<K, Batcher<I, O>>, key: K, make: () => Batcher<I, O>): Batcher<I, O> {
  let b = cache.get(key);
  if (!b) {
    b = make();
    cache.set(key, b);
  }
  return b;
}
