// The reactor: keeps every schedulable mission's next run in the timer
// wheel, fed by the initial load and by NOTIFY; when an entry fires it
// queues the run in due order, runs at most `concurrency` at once, claims
// each in Postgres and hands it to the planner and the write-back.
//
// It never polls: while nothing is due it makes no query at all (the
// listener's connection check aside). It never rolls a schedule back: a
// notification older than what it knows for a mission is ignored, and the
// claim re-checks the snapshot in the database anyway.

import type { webcrypto } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/pool.js';
import { claimRun } from '../db/sql/claim-run.js';
import { finishRun, releaseRuns } from '../db/sql/finish-run.js';
import { loadDueNow, loadSchedule } from '../db/sql/load-schedule.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { nextRunAfter } from '../mission/cadence.js';
import { readMission } from '../mission/mission.js';
import { LlmError, type LlmClient } from '../planner/llm-client.js';
import { planMission } from '../planner/plan-mission.js';
import type { ResolverRegistry } from '../planner/resolvers/registry.js';
import { failedIteration, iterationIdFor, type Iteration } from '../write-back/iteration.js';
import { writeBack } from '../write-back/write-back.js';
import { retryDelayMs } from './backoff.js';
import { ScheduleListener, type SchedulePayload } from './listener.js';
import { MEMBERS_CHANNEL, PartitionOwnership, type OwnershipChange } from './ownership.js';
import { RunQueue } from './run-queue.js';
import { TimerWheel, type WheelClock } from './timer-wheel.js';

/** A run that crashed its daemon this often is written as failed, not retried. */
export const MAX_ATTEMPTS = 3;

export type RunOutcome =
  | 'planned' | 'failed' | 'skipped' | 'moved' | 'finished' | 'held' | 'throttled'
  | 'lost-claim' | 'mission-gone' | 'error' | 'shutdown';

export interface RunEvent {
  sid: number;
  dueMs: number;
  outcome: RunOutcome;
  userId?: string;
  missionId?: string;
  iteration?: Iteration;
  nextRunAtMs?: number | null;
  title?: string;
}

export interface ReactorDeps {
  pool: pg.Pool;
  db: Db;
  config: Config;
  log: Logger;
  metrics: Metrics;
  llm: LlmClient;
  resolvers: ResolverRegistry;
  /** The runner's RSA key for mission grants; null = grants disabled. */
  privateKey: webcrypto.CryptoKey | null;
  clock?: WheelClock;
}

interface WheelValue {
  dueMs: number;
  version: number;
}

interface Deferred {
  resolve(outcome: RunOutcome): void;
}

export class Reactor extends EventEmitter {
  readonly wheel: TimerWheel<number, WheelValue>;
  private readonly versions = new Map<number, number>();
  private readonly queue = new RunQueue();
  private readonly inFlight = new Set<string>();
  private readonly claimed = new Map<number, string>(); // runId -> key
  private readonly waiters = new Map<string, Deferred[]>();
  private readonly listener: ScheduleListener;
  readonly ownership: PartitionOwnership;
  /** sid -> partition, for dropping a partition's missions when it moves away */
  private readonly partitionOf = new Map<number, number>();
  /** loads run one after another, so a partial load never races a full one */
  private loads: Promise<void> = Promise.resolve();
  private started = false;
  private readonly abort = new AbortController();
  private stopping = false;

  constructor(private readonly deps: ReactorDeps) {
    super();
    this.wheel = new TimerWheel<number, WheelValue>({
      resolutionMs: deps.config.wheelResolutionMs,
      clock: deps.clock,
      onFire: (sid, _fireAt, value) => {
        this.deps.metrics.missionsScheduled.set(this.wheel.size);
        this.emit('fired', sid, value.dueMs);
        void this.enqueue(sid, value.dueMs);
      },
      onClockStep: (delta) => deps.log.warn({ deltaMs: Math.round(delta) }, 'wall clock stepped; schedule re-anchored'),
    });
    this.ownership = new PartitionOwnership({
      connectionString: deps.config.databaseUrl,
      log: deps.log,
      metrics: deps.metrics,
      notifyViaPool: async (payload) => {
        await deps.pool.query('SELECT pg_notify($1, $2)', [MEMBERS_CHANNEL, payload]);
      },
    });
    this.ownership.on('changed', (c: OwnershipChange) => this.onOwnershipChanged(c));
    this.listener = new ScheduleListener(deps.config.databaseUrl, {
      onNotification: (p) => this.onNotification(p),
      onReconnected: () => {
        deps.metrics.listenerReconnects.inc();
        deps.metrics.listenerConnected.set(1);
        deps.log.info('LISTEN connection re-established; resyncing');
        this.emit('listener', true);
        // Membership notifications may have been missed too.
        void this.ownership.rebalance('listener-reconnect').then(() => this.resync('reconnect'));
      },
      onDisconnected: (error) => {
        deps.metrics.listenerConnected.set(0);
        deps.log.warn({ err: error.message }, 'LISTEN connection lost; reconnecting');
        this.emit('listener', false);
      },
      onInvalidPayload: () => deps.metrics.notificationsReceived.inc({ kind: 'invalid' }),
      onMembersChanged: () => void this.ownership.rebalance('member-notify'),
      onSnapshotError: (errorId) => {
        deps.metrics.snapshotErrors.inc();
        deps.log.warn({ snapshotErrorId: errorId }, 'the trigger could not fold a mission change (the insert committed); see mana_ai.snapshot_errors');
        this.emit('snapshot-error', errorId);
      },
    });
  }

  /**
   * LISTEN first, then take partitions, then load them: no change can fall
   * between the three (a notification for a partition is applied from the
   * moment it is owned, and the load after that reads the current state).
   */
  async start(): Promise<void> {
    await this.listener.start();
    this.deps.metrics.listenerConnected.set(1);
    await this.ownership.start();
    this.started = true;
    await this.resync('start');
  }

  private onOwnershipChanged(c: OwnershipChange): void {
    if (c.released.length) {
      const gone = new Set(c.released);
      for (const [sid, part] of this.partitionOf) if (gone.has(part)) this.forget(sid);
      this.deps.metrics.missionsScheduled.set(this.wheel.size);
    }
    if (c.acquired.length && this.started && !this.stopping) void this.loadPartitions(c.acquired);
  }

  /** Drops a mission from the schedule and everything known about it. */
  private forget(sid: number): void {
    this.wheel.cancel(sid);
    this.versions.delete(sid);
    this.partitionOf.delete(sid);
  }

  /** Loads the missions of partitions just taken; whatever became due meanwhile fires at once. */
  private loadPartitions(partitions: readonly number[]): Promise<void> {
    return this.load(`acquired ${partitions.length} partition(s)`, partitions, false);
  }

  get listenerConnected(): boolean {
    return this.listener.connected;
  }

  get lastNotificationAt(): Date | null {
    return this.listener.lastNotificationAt;
  }

  get runsInFlight(): number {
    return this.inFlight.size;
  }

  get runsQueued(): number {
    return this.queue.size;
  }

  /** Reloads the schedule of every owned partition (start, reconnect). */
  resync(reason: string): Promise<void> {
    return this.load(reason, null, true);
  }

  /**
   * One load, queued behind the others. `partitions` null = every owned
   * partition, and then missions not seen are dropped (full resync).
   * Rows of a partition that moved away meanwhile are skipped.
   */
  private load(reason: string, partitions: readonly number[] | null, full: boolean): Promise<void> {
    const run = async () => {
      const started = performance.now();
      for (let attempt = 1; !this.stopping; attempt++) {
        try {
          const wanted = partitions ?? [...this.ownership.owned];
          const rows = wanted.length ? await loadSchedule(this.deps.pool, { partitions: wanted }) : [];
          const seen = new Set<number>();
          for (const r of rows) {
            if (!this.ownership.owns(r.partition)) continue;
            seen.add(r.sid);
            this.partitionOf.set(r.sid, r.partition);
            const known = this.versions.get(r.sid);
            if (known !== undefined && known > r.version) continue; // a newer notification already arrived
            this.versions.set(r.sid, r.version);
            this.arm(r.sid, r.dueMs, r.version);
          }
          if (full) {
            for (const sid of [...this.wheel.keys()]) if (!seen.has(sid)) this.forget(sid);
          }
          this.deps.metrics.resyncs.inc({ reason: full ? reason : 'partitions-acquired' });
          this.deps.metrics.missionsScheduled.set(this.wheel.size);
          this.deps.log.info({ reason, missions: rows.length, partitions: wanted.length, ms: Math.round(performance.now() - started) }, 'schedule loaded');
          this.emit('resynced', { reason, missions: rows.length });
          return;
        } catch (error) {
          const delay = retryDelayMs(attempt);
          this.deps.log.warn({ reason, attempt, err: (error as Error).message, retryInMs: delay }, 'schedule load failed; retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    };
    this.loads = this.loads.then(run, run);
    return this.loads;
  }

  private onNotification(p: SchedulePayload): void {
    if (this.stopping) return;
    if (!this.ownership.owns(p.p)) {
      this.deps.metrics.notificationsReceived.inc({ kind: 'other-partition' });
      return;
    }
    this.partitionOf.set(p.s, p.p);
    const known = this.versions.get(p.s);
    if (!p.r && known !== undefined && p.v <= known) {
      this.deps.metrics.notificationsReceived.inc({ kind: 'stale' });
      return;
    }
    this.deps.metrics.notificationsReceived.inc({ kind: p.d === null ? 'unschedule' : 'schedule' });
    if (known === undefined || p.v > known) this.versions.set(p.s, p.v);
    if (p.d === null) this.forget(p.s);
    else this.arm(p.s, p.d, p.v);
    this.deps.metrics.missionsScheduled.set(this.wheel.size);
    this.emit('scheduled', { sid: p.s, dueMs: p.d, version: p.v });
  }

  private arm(sid: number, dueMs: number, version: number): void {
    const key = RunQueue.key(sid, dueMs);
    if (this.inFlight.has(key) || this.queue.has(sid, dueMs)) {
      this.wheel.cancel(sid); // that due time is being handled
      return;
    }
    this.wheel.schedule(sid, dueMs, { dueMs, version });
  }

  /** Queues (sid, due) and resolves when its run attempt ends. */
  enqueue(sid: number, dueMs: number): Promise<RunOutcome> {
    const key = RunQueue.key(sid, dueMs);
    const p = new Promise<RunOutcome>((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve });
      this.waiters.set(key, list);
    });
    if (this.stopping) this.settle(key, 'shutdown');
    else if (!this.inFlight.has(key)) {
      this.queue.push({ sid, dueMs });
      this.deps.metrics.runsQueued.set(this.queue.size);
      this.pump();
    }
    return p;
  }

  private settle(key: string, outcome: RunOutcome): void {
    const list = this.waiters.get(key);
    this.waiters.delete(key);
    for (const w of list ?? []) w.resolve(outcome);
  }

  private pump(): void {
    while (!this.stopping && this.inFlight.size < this.deps.config.concurrency && this.queue.size > 0) {
      const next = this.queue.pop()!;
      const key = RunQueue.key(next.sid, next.dueMs);
      this.inFlight.add(key);
      this.deps.metrics.runsInFlight.set(this.inFlight.size);
      this.deps.metrics.runsQueued.set(this.queue.size);
      void this.runOne(next.sid, next.dueMs, key);
    }
  }

  private retryLater(sid: number, dueMs: number, atMs: number): void {
    if (this.stopping || this.wheel.has(sid)) return; // a newer schedule already replaced it
    const part = this.partitionOf.get(sid);
    if (part === undefined || !this.ownership.owns(part)) return; // moved away: its new owner loads it
    this.wheel.schedule(sid, atMs, { dueMs, version: this.versions.get(sid) ?? 0 });
  }

  private async runOne(sid: number, dueMs: number, key: string): Promise<void> {
    let outcome: RunOutcome = 'error';
    const { config, metrics, log } = this.deps;
    // A run starts when it leaves the queue for a slot: the claim is its
    // first step. Lag is observed only for runs this daemon claims, so a
    // run lost to another daemon is not counted twice.
    const startedAtMs = Date.now();
    try {
      const claim = await claimRun(this.deps.pool, {
        sid, dueMs, workerId: config.workerId, leaseMs: config.claimLeaseMs, minGapMs: config.minRunGapMs,
      });
      metrics.claims.inc({ outcome: claim.outcome });
      if (claim.outcome === 'claimed') {
        this.claimed.set(claim.runId, key);
        try {
          outcome = await this.execute(sid, dueMs, startedAtMs, claim);
        } finally {
          this.claimed.delete(claim.runId);
        }
      } else {
        outcome = claim.outcome;
        if (claim.outcome === 'held' || claim.outcome === 'throttled') this.retryLater(sid, dueMs, claim.retryAtMs);
      }
    } catch (error) {
      if (this.stopping || (error instanceof LlmError && error.reason === 'aborted')) {
        outcome = 'shutdown';
      } else {
        outcome = 'error';
        metrics.missionErrors.inc({ reason: 'internal' });
        log.error({ sid, dueAt: new Date(dueMs).toISOString(), err: (error as Error).message }, 'run failed; retrying later');
        this.retryLater(sid, dueMs, Date.now() + 5_000 + Math.random() * 5_000);
      }
    } finally {
      this.inFlight.delete(key);
      metrics.runsInFlight.set(this.inFlight.size);
      metrics.runs.inc({ outcome });
      this.settle(key, outcome);
      this.pump();
      if (this.inFlight.size === 0 && this.queue.size === 0) this.emit('idle');
    }
  }

  private async execute(
    sid: number,
    dueMs: number,
    startedAtMs: number,
    claim: { runId: number; attempts: number; userId: string; missionId: string; record: Record<string, unknown> },
  ): Promise<RunOutcome> {
    const { config, metrics } = this.deps;
    const log = this.deps.log.child({ userId: claim.userId, missionId: claim.missionId });
    const startedAt = new Date(startedAtMs);
    const lagMs = Math.max(0, startedAtMs - dueMs);
    metrics.dueLag.observe(lagMs / 1000);
    const title = typeof claim.record['title'] === 'string' ? claim.record['title'] : '';
    this.emit('run-started', { sid, dueMs, startedAtMs, lagMs, userId: claim.userId, missionId: claim.missionId, title });
    log.info({ dueAt: new Date(dueMs).toISOString(), attempt: claim.attempts, lagMs, claimMs: Date.now() - startedAtMs }, 'run started');

    const read = readMission(claim.record);
    if (!read.ok) {
      await finishRun(this.deps.pool, { runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, status: 'skipped', error: read.reason });
      metrics.missionsSkipped.inc({ reason: read.reason });
      log.warn({ reason: read.reason }, 'mission record unreadable; skipped for this due time');
      this.emit('run-finished', { sid, dueMs, outcome: 'skipped', userId: claim.userId, missionId: claim.missionId, title } satisfies RunEvent);
      return 'skipped';
    }
    const mission = read.mission;
    const iterationId = iterationIdFor(claim.userId, claim.missionId, dueMs);
    let iteration: Iteration;
    let failure: string | null = null;
    if (claim.attempts > MAX_ATTEMPTS) {
      iteration = failedIteration(iterationId, startedAt.toISOString(), new Date().toISOString(), 'too-many-attempts');
      failure = 'too-many-attempts';
    } else {
      ({ iteration, failure } = await planMission(
        { db: this.deps.db, llm: this.deps.llm, resolvers: this.deps.resolvers, metrics, log, privateKey: this.deps.privateKey },
        { userId: claim.userId, missionId: claim.missionId, iterationId, startedAt },
        mission,
        this.abort.signal,
      ));
    }
    const nowMs = Date.now();
    const nextRunAtMs = nextRunAfter(mission.cadence, nowMs, config.timeZone);
    const written = await writeBack(this.deps.db, {
      runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, sid,
      userId: claim.userId, missionId: claim.missionId, iteration, nextRunAtMs, nowMs,
    });
    let outcome: RunOutcome;
    if (written === 'written') {
      metrics.plansWrittenBack.inc();
      outcome = failure ? 'failed' : 'planned';
      if (failure) metrics.missionErrors.inc({ reason: failure.split(':')[0]! });
      log.info(
        { outcome, steps: iteration.plan.length, nextRunAt: nextRunAtMs === null ? null : new Date(nextRunAtMs).toISOString(), failure },
        'run written back',
      );
    } else {
      outcome = written;
      log.warn({ outcome: written }, 'run not written back');
    }
    this.emit('run-finished', { sid, dueMs, outcome, userId: claim.userId, missionId: claim.missionId, iteration, nextRunAtMs, title } satisfies RunEvent);
    return outcome;
  }

  /** POST /internal/tick: runs every mission due now; resolves with counts. */
  async tick(): Promise<Record<string, number>> {
    const due = await loadDueNow(this.deps.pool);
    const outcomes = await Promise.all(due.map((r) => this.enqueue(r.sid, r.dueMs)));
    const counts: Record<string, number> = { due: due.length };
    for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
    return counts;
  }

  /** Stops taking runs, lets runs in flight finish for `graceMs`, gives back the rest. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wheel.close();
    for (const r of this.drainQueue()) this.settle(RunQueue.key(r.sid, r.dueMs), 'shutdown');
    // Partitions go first, so the other daemons schedule them while our
    // runs in flight finish (the claims keep those from running twice).
    await this.ownership.stop();
    await this.listener.close();
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.once('idle', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const unfinished = [...this.claimed.keys()];
    this.abort.abort();
    if (unfinished.length > 0) {
      const n = await releaseRuns(this.deps.pool, { runIds: unfinished, workerId: this.deps.config.workerId }).catch(() => 0);
      this.deps.log.warn({ released: n }, 'gave back claims of runs that did not finish within the grace period');
    }
  }

  private drainQueue(): { sid: number; dueMs: number }[] {
    const out: { sid: number; dueMs: number }[] = [];
    for (let r = this.queue.pop(); r; r = this.queue.pop()) out.push(r);
    return out;
  }
}
