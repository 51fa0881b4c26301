// Restores lost iterations for the missions of this daemon's partitions
// (issue 28): the trigger's notification of a loss (mana_ai_lost_iterations,
// { id, p }) and, at every partition load, the losses recorded while nobody
// owned them (a restart or a partition move between a loss and its repair).
// One repair at a time, in arrival order; a repair that meets the database
// away is tried again with backoff, and what is still pending is found at
// the next load. Deciding *what* to write is restore-iterations.ts's job.

import type pg from 'pg';
import type { Db } from '../db/pool.js';
import { pendingLosses } from '../db/sql/lost-iterations.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { restoreLostIterations, type RestoreOutcome } from '../write-back/restore-iterations.js';
import { retryDelayMs } from './backoff.js';
import { coerceError } from '../coerce-error.js';

/** Pending losses repaired per partition load (the rest at the next load or notification). */
const PENDING_BATCH = 500;

export interface IterationRepairsDeps {
  db: Db;
  pool: pg.Pool;
  log: Logger;
  metrics: Metrics;
  generation: 'v0.4' | 'head';
  owns(partition: number): boolean;
  stopping(): boolean;
  /** after each repair (tests and the demo listen) */
  repaired(e: { lossId: number; outcome: RestoreOutcome | 'error'; missionId?: string; restored: unknown[] }): void;
}

export class IterationRepairs {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly deps: IterationRepairsDeps) {}

  /** The trigger recorded a loss in partition `p`. */
  notified(id: number | null, p: number | null): void {
    if (id === null || p === null || !this.deps.owns(p) || this.deps.stopping()) return;
    this.enqueue([id]);
  }

  /** Losses of these partitions still pending (at each load). */
  async pending(partitions: readonly number[]): Promise<void> {
    const ids = await pendingLosses(this.deps.pool, { partitions, limit: PENDING_BATCH });
    if (ids.length) this.enqueue(ids);
  }

  private enqueue(ids: readonly number[]): void {
    this.chain = this.chain.then(async () => {
      for (const id of ids) await this.repairOne(id);
    });
  }

  private async repairOne(id: number): Promise<void> {
    const { metrics, log } = this.deps;
    for (let attempt = 1; attempt <= 5 && !this.deps.stopping(); attempt++) {
      try {
        const r = await restoreLostIterations(this.deps.db, this.deps.pool, { lossId: id, generation: this.deps.generation, nowMs: Date.now() });
        metrics.iterationRepairs.inc({ outcome: r.outcome });
        if (r.outcome === 'restored') {
          metrics.iterationsRestored.inc(r.restored.length);
          log.warn({ userId: r.userId, missionId: r.missionId, iterationIds: r.restored, lossId: id }, 'a device erased iterations it had not seen; restored them');
        }
        this.deps.repaired({ lossId: id, outcome: r.outcome, ...(r.missionId ? { missionId: r.missionId } : {}), restored: r.restored });
        return;
      } catch (error) {
        log.warn({ lossId: id, attempt, err: coerceError(error).message }, 'restoring lost iterations failed; retrying');
        if (attempt < 5) await new Promise((res) => setTimeout(res, retryDelayMs(attempt, { jitter: true })));
      }
    }
    metrics.iterationRepairs.inc({ outcome: 'error' });
    this.deps.repaired({ lossId: id, outcome: 'error', restored: [] });
  }
}
