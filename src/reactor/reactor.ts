// The reactor decides *when* a mission runs: it keeps every schedulable
// mission's next run in the timer wheel, fed by the initial load and by
// NOTIFY, for the partitions this daemon owns; when an entry fires it hands
// the run to the dispatcher (run-dispatcher.ts), which queues it
// round-robin, claims it and executes it. What it knows per mission lives
// in typed-array columns (mission-table.ts), so a million missions fit the
// deployed 256 MB.
//
// A mission of an agent passes the agent's gates first (agent-gates.ts):
// a paused agent, a full set of runs or a used-up budget hold it back in
// memory, without a query, until the agent lets it run.
//
// It never polls: while nothing is due it makes no query at all (the
// listener's connection check aside). It never rolls a schedule back: a
// notification older than what it knows for a mission is ignored, and the
// claim re-checks the snapshot in the database anyway.

import { estimateMissions } from '../db/sql/estimate-missions.js';
import { loadAgents } from '../db/sql/load-agents.js';
import { loadDueNow, loadSchedule } from '../db/sql/load-schedule.js';
import { PARTITIONS, drawGeneration, notifyMembers, terminateWatchBackend } from '../db/sql/partition-locks.js';
import { pendingSnapshotErrors, repairSnapshotError, type RepairOutcome } from '../db/sql/snapshot-repair.js';
import { DeepResearchJobs } from '../research/deep-jobs.js';
import { IterationRepairs } from './iteration-repairs.js';
import type { RunOutcome } from '../run/execute-run.js';
import type { ReactorDeps } from './deps.js';

export type { ReactorDeps } from './deps.js';
import { AgentGates } from './agent-gates.js';
import { GuardedEmitter, listenerErrorReporter, type ReactorEvents } from './events.js';
import { LogRate } from '../log-rate.js';
import { clampRetryAt, retryDelayMs } from './backoff.js';
import { ScheduleListener, type AgentPayload, type SchedulePayload, type SnapshotErrorPayload } from './listener.js';
import { MissionTable, NO_REF } from './mission-table.js';
import { PartitionOwnership, type OwnershipChange } from './ownership.js';
import { RunDispatcher } from './run-dispatcher.js';
import { TimerWheel } from './timer-wheel.js';
import { coerceError } from '../coerce-error.js';

export { MAX_ATTEMPTS, type RunEvent, type RunOutcome } from '../run/execute-run.js';

/** The soonest a claim that said "not now" is tried again (a skewed clock must not make it spin). */
const MIN_RETRY_MS = 500;

/** Pending transient fold errors repaired per partition load (the rest at the next load or notification). */
const REPAIR_BATCH = 1_000;


export class Reactor extends GuardedEmitter<ReactorEvents> {
  /** keyed by mission table slot */
  readonly wheel: TimerWheel;
  private readonly table = new MissionTable();
  /** slot -> the run's due time, for wheel entries armed later than the run's due time (retries) */
  private readonly retryDue = new Map<number, number>();
  /** executing runs: queue, claims, in flight (run-dispatcher.ts) */
  private readonly runs: RunDispatcher;
  private readonly snapshotErrorLog = new LogRate(20, 60_000);
  /** This process's generation: our claims are alive while a connection of ours holds it (sql/functions/claim.sql). */
  readonly generation = drawGeneration();
  /** Rows per page of POST /internal/tick (tests make it small). */
  tickPageSize = 5_000;
  private readonly listener: ScheduleListener;
  readonly ownership: PartitionOwnership;
  readonly gates: AgentGates;
  /** restoring iterations stale devices erased (issue 28) */
  readonly iterationRepairs: IterationRepairs;
  /** deep research jobs (issue 31); null when deep research is off */
  readonly deepJobs: DeepResearchJobs | null;
  /** loads run one after another, so a partial load never races a full one */
  private loads: Promise<void> = Promise.resolve();
  private started = false;
  private stopping = false;

  constructor(private readonly deps: ReactorDeps) {
    super(listenerErrorReporter(deps.log, deps.metrics));
    this.wheel = new TimerWheel({
      resolutionMs: deps.config.wheelResolutionMs,
      clock: deps.clock,
      onFire: (slot, at) => {
        const sid = this.table.sid[slot]!;
        const dueMs = this.retryDue.get(slot) ?? at;
        this.retryDue.delete(slot);
        this.deps.metrics.missionsScheduled.set(this.wheel.size);
        this.fire(sid, dueMs);
      },
      onClockStep: (delta) => deps.log.warn({ deltaMs: Math.round(delta) }, 'wall clock stepped; schedule re-anchored'),
    });
    this.gates = new AgentGates({
      now: () => Date.now(),
      onRelease: (missions) => {
        for (const m of missions) this.runs.admit(m.sid, m.dueMs);
      },
    });
    deps.metrics.budgetBlockedSource.current = () => this.gates.budgetBlocked();
    this.ownership = new PartitionOwnership({
      generation: this.generation,
      connectionString: deps.config.databaseUrl,
      log: deps.log,
      metrics: deps.metrics,
      notifyViaPool: (notice) => notifyMembers(deps.pool, notice),
      terminateBackend: (pid, startedAt) => terminateWatchBackend(deps.pool, pid, startedAt),
    });
    this.ownership.on('changed', (c: OwnershipChange) => this.onOwnershipChanged(c));
    this.ownership.on('peer-lost', () => this.onPeerLost());
    this.ownership.on('reconnected', () => void this.runs.adoptInFlight());
    this.iterationRepairs = new IterationRepairs({
      db: deps.db,
      pool: deps.pool,
      log: deps.log,
      metrics: deps.metrics,
      generation: deps.config.webapp,
      owns: (p) => this.ownership.owns(p),
      stopping: () => this.stopping,
      repaired: (e) => this.emit('iterations-restored', e),
    });
    // deep research jobs of this daemon's partitions (issue 31): a job that ends wakes its run at once
    this.deepJobs = deps.researchClient && deps.config.deepResearch
      ? new DeepResearchJobs({
          db: deps.db, pool: deps.pool, client: deps.researchClient, config: deps.config.deepResearch, metrics: deps.metrics, log: deps.log,
          wake: (sid, dueMs) => this.wakeRun(sid, dueMs), timeZone: deps.config.timeZone,
        })
      : null;
    this.runs = new RunDispatcher({ ...deps, deepJobs: this.deepJobs }, this.gates, {
      events: this,
      partitionOf: (sid) => this.partitionOf(sid),
      owns: (partition) => this.ownership.owns(partition),
      agentRefOf: (sid) => this.agentRefOf(sid),
      lanesOf: (sid) => {
        const slot = this.table.slotOf(sid);
        return slot === undefined ? { userRef: NO_REF, agentRef: NO_REF } : { userRef: this.table.userRef[slot]!, agentRef: this.table.agentRef[slot]! };
      },
      retryLater: (sid, dueMs, atMs) => this.retryLater(sid, dueMs, atMs),
      witness: () => this.ownership.witness,
      session: () => this.ownership.session,
    });
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
      // Any daemon that left may have held runs of ours-to-be: every daemon
      // (not only the dead one's watcher) retries its held runs (item 7).
      onMembersChanged: (e) =>
        void this.ownership.rebalance('member-notify').then(() => {
          if (e === 'left') this.onPeerLost();
        }),
      onSnapshotError: (e) => this.onSnapshotError(e),
      onLostIterations: (e) => this.iterationRepairs.notified(e.id, e.p),
      onAgentChanged: (a) => this.onAgentChanged(a),
      onCheck: (unowned) => {
        deps.metrics.unownedChecks.inc({ result: unowned > 0 ? 'unowned' : 'all-owned' });
        if (unowned > 0 && !this.stopping && this.ownership.connected) {
          deps.log.warn({ unowned }, 'partitions without an owner; rebalancing');
          void this.ownership.rebalance('unowned-partitions');
        }
      },
    }, { checkMs: deps.config.listenerCheckMs, generation: this.generation });
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
      for (const slot of this.table.slots()) if (gone.has(this.table.partition[slot]!)) this.forget(this.table.sid[slot]!);
      this.gates.dropPartitions(gone);
      this.deps.metrics.missionsScheduled.set(this.wheel.size);
    }
    if (c.acquired.length && this.started && !this.stopping) void this.loadPartitions(c.acquired);
  }

  /** Drops a mission from the schedule and everything known about it. */
  private forget(sid: number): void {
    const slot = this.table.slotOf(sid);
    if (slot !== undefined) {
      this.wheel.cancel(slot);
      this.retryDue.delete(slot);
      this.table.release(sid);
    }
    this.gates.unpark(sid);
  }

  /** The due time of the run a mission's wheel entry stands for, or undefined (not in the wheel). */
  scheduledDue(sid: number): number | undefined {
    const slot = this.table.slotOf(sid);
    return slot !== undefined && this.wheel.has(slot) ? (this.retryDue.get(slot) ?? this.wheel.dueOf(slot)) : undefined;
  }

  private agentRefOf(sid: number): number | undefined {
    const slot = this.table.slotOf(sid);
    const ref = slot === undefined ? NO_REF : this.table.agentRef[slot]!;
    return ref === NO_REF ? undefined : ref;
  }

  private partitionOf(sid: number): number | undefined {
    const slot = this.table.slotOf(sid);
    const part = slot === undefined ? -1 : this.table.partition[slot]!;
    return part < 0 ? undefined : part;
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
    return this.runs.runsInFlight;
  }

  get runsQueued(): number {
    return this.runs.runsQueued;
  }

  /** Queues (sid, due) and resolves when its run attempt ends (tests and tools; the wheel queues without a promise). */
  enqueue(sid: number, dueMs: number): Promise<RunOutcome> {
    return this.runs.enqueue(sid, dueMs);
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
          // Fold errors that happened while nobody owned these partitions
          // are repaired first, so the schedule loaded below is current.
          const pending = await pendingSnapshotErrors(this.deps.pool, { partitions: wanted, limit: REPAIR_BATCH });
          if (pending.length) await this.repair(pending, 'pending');
          // and iterations lost while nobody owned them are restored (queued, not awaited)
          await this.iterationRepairs.pending(wanted);
          // and deep research jobs still pending are polled again (their runs wait without a claim)
          await this.deepJobs?.resume(wanted);
          // Agents before missions: a mission armed below may fire at once.
          const agents = await loadAgents(this.deps.pool, { partitions: wanted });
          for (const a of agents) {
            if (this.ownership.owns(a.partition)) this.gates.update(a.ref, a.partition, a);
          }
          // Agents of these partitions the database no longer has (their
          // `absent` notification was lost): their missions run without them.
          this.gates.markAbsentExcept(new Set(wanted), new Set(agents.map((a) => a.ref)));
          const t = this.table;
          if (full) t.seen.fill(0);
          if (wanted.length) {
            // room for the share of the estimate these partitions hold, before the rows arrive
            const estimate = await estimateMissions(this.deps.pool);
            const expected = t.size + Math.ceil((estimate * wanted.length) / PARTITIONS * 1.05);
            if (estimate > 0) {
              t.reserve(expected);
              this.wheel.reserve(expected);
            }
          }
          let missions = 0;
          for await (const page of wanted.length ? loadSchedule(this.deps.pool, { partitions: wanted }) : []) {
            for (let i = 0; i < page.length; i++) {
              const partition = page.partition(i);
              if (!this.ownership.owns(partition)) continue;
              missions += 1;
              const slot = t.ensure(page.sid(i));
              // A newer notification already arrived: this page is older in
              // every column (agent and user refs too), so it changes nothing.
              // agentRef -1 = none = NO_REF.
              if (!t.applyLoaded(slot, { partition, version: page.version(i), agentRef: page.agentRef(i), userRef: page.userRef(i) })) continue;
              this.arm(slot, page.dueMs(i));
            }
          }
          if (full) {
            // not in the database any more, and not notified while this load ran
            // (forget() frees only the slot being looked at, so the live iteration is safe)
            for (const slot of t.slots()) if (t.seen[slot] === 0) this.forget(t.sid[slot]!);
          }
          this.deps.metrics.resyncs.inc({ reason: full ? reason : 'partitions-acquired' });
          this.deps.metrics.missionsScheduled.set(this.wheel.size);
          this.deps.log.info({ reason, missions, agents: agents.length, partitions: wanted.length, ms: Math.round(performance.now() - started) }, 'schedule loaded');
          this.emit('resynced', { reason, missions });
          return;
        } catch (error) {
          const delay = retryDelayMs(attempt);
          this.deps.log.warn({ reason, attempt, err: coerceError(error).message, retryInMs: delay }, 'schedule load failed; retrying');
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
    if (p.x === 'unparked') this.deps.metrics.missionsUnparked.inc();
    const t = this.table;
    const existing = t.slotOf(p.s);
    const known = existing === undefined || t.version[existing]! < 0 ? undefined : t.version[existing]!;
    if (!p.r && known !== undefined && p.v <= known) {
      this.deps.metrics.notificationsReceived.inc({ kind: 'stale' });
      return;
    }
    this.deps.metrics.notificationsReceived.inc({ kind: p.d === null ? 'unschedule' : 'schedule' });
    // one short span per notification that changes the schedule (its attributes are not even built when tracing is off)
    if (this.deps.tracing.enabled) {
      this.deps.tracing.tracer.startSpan('mission.reschedule', {
        attributes: { 'mission.sid': p.s, 'mission.version': p.v, 'mission.partition': p.p, 'mission.due': p.d === null ? 'none' : new Date(p.d).toISOString(), 'mana_ai.kind': p.d === null ? 'unschedule' : 'schedule' },
      }).end();
    }
    if (p.d === null) this.forget(p.s);
    else {
      const slot = t.ensure(p.s);
      if (known === undefined || p.v > known) t.version[slot] = p.v;
      t.partition[slot] = p.p;
      t.seen[slot] = 1; // a resync running now keeps it
      t.agentRef[slot] = typeof p.g === 'number' ? p.g : NO_REF;
      if (typeof p.u === 'number') t.userRef[slot] = p.u;
      this.arm(slot, p.d, true);
    }
    this.deps.metrics.missionsScheduled.set(this.wheel.size);
    this.emit('scheduled', { sid: p.s, dueMs: p.d, version: p.v });
  }

  /** An agent's gate fields changed (sql/functions/snapshot-store.sql): its waiting missions may run now. */
  private onAgentChanged(a: AgentPayload): void {
    if (this.stopping) return;
    if (!this.ownership.owns(a.p)) {
      this.deps.metrics.notificationsReceived.inc({ kind: 'other-partition' });
      return;
    }
    this.deps.metrics.notificationsReceived.inc({ kind: 'agent' });
    this.gates.update(a.g, a.p, { version: a.v, gate: a.s, maxConcurrent: a.c, budget: a.b });
    this.emit('agent', a);
  }

  /**
   * Puts (sid, due) in the wheel. `now`: a due time that has already come
   * is admitted at once instead, in this turn of the event loop, not at
   * the wheel's next wake-up, which comes after the rest of this turn's I/O
   * (issue 30: a mission written due now). A load's overdue missions go
   * through the wheel, which hands out a large backlog in chunks.
   */
  private arm(slot: number, dueMs: number, now = false): void {
    const sid = this.table.sid[slot]!;
    this.gates.unpark(sid);
    if (this.runs.pending(sid, dueMs)) {
      this.wheel.cancel(slot); // that due time is being handled
      return;
    }
    this.retryDue.delete(slot);
    if (!now || dueMs > this.wheel.now()) {
      this.wheel.schedule(slot, dueMs);
      return;
    }
    this.wheel.cancel(slot);
    this.fire(sid, dueMs);
  }

  /** A due time has come (the wheel fired it, or it was due on arrival): to the dispatcher. */
  private fire(sid: number, dueMs: number): void {
    this.emit('fired', sid, dueMs);
    this.runs.admit(sid, dueMs);
  }

  private retryLater(sid: number, dueMs: number, requestedAtMs: number): void {
    const atMs = clampRetryAt(requestedAtMs, Date.now(), MIN_RETRY_MS);
    const slot = this.table.slotOf(sid);
    if (this.stopping || slot === undefined || this.wheel.has(slot)) return; // forgotten, or a newer schedule already replaced it
    const part = this.table.partition[slot]!;
    if (part < 0 || !this.ownership.owns(part)) return; // moved away: its new owner loads it
    if (atMs !== dueMs) this.retryDue.set(slot, dueMs);
    this.wheel.schedule(slot, atMs);
  }

  /**
   * A run waiting for its deep research (issue 31) is woken when the job
   * ends, unless the mission was rescheduled since (a newer due time in the
   * wheel) or its partition moved away.
   */
  private wakeRun(sid: number, dueMs: number): void {
    // a job submitted ahead of its due time ends before it: the wheel runs the mission when it is due
    if (this.stopping || dueMs > Date.now()) return;
    const slot = this.table.slotOf(sid);
    const part = this.partitionOf(sid);
    if (slot === undefined || part === undefined || !this.ownership.owns(part)) return;
    if (this.wheel.has(slot) && (this.retryDue.get(slot) ?? this.wheel.dueOf(slot)) !== dueMs) return; // rescheduled since
    this.wheel.cancel(slot);
    this.retryDue.delete(slot);
    this.runs.admit(sid, dueMs);
  }

  /** A peer daemon is gone: the runs it held may be ours to take now (claim_run checks its session). */
  private onPeerLost(): void {
    if (this.stopping) return;
    const held = this.runs.takeHeld();
    for (const [sid, dueMs] of held) {
      const part = this.partitionOf(sid);
      if (part === undefined || !this.ownership.owns(part)) continue;
      const slot = this.table.slotOf(sid)!;
      if (this.wheel.has(slot) && (this.retryDue.get(slot) ?? this.wheel.dueOf(slot)) !== dueMs) continue; // rescheduled since
      this.wheel.cancel(slot);
      this.retryDue.delete(slot);
      this.runs.admit(sid, dueMs);
    }
  }

  /**
   * The trigger recorded a fold error. A transient one (deadlock, lock
   * timeout, …) left the snapshot behind the log: the owner of the
   * mission's partition rebuilds it at once. Errors for bad data need no
   * repair (the rebuild would skip the row as the trigger did).
   */
  private onSnapshotError(e: SnapshotErrorPayload): void {
    this.deps.metrics.snapshotErrors.inc();
    // Any user can write rows the fold refuses: at most 20 lines a minute,
    // the rest counted in the next line (the table and the metric have all).
    const line = this.snapshotErrorLog.take();
    if (line) {
      this.deps.log.warn(
        { snapshotErrorId: e.id, transient: e.t, ...(line.suppressedBefore ? { suppressedBefore: line.suppressedBefore } : {}) },
        'the trigger could not fold a mission change (the insert committed); see mana_ai.snapshot_errors',
      );
    }
    this.emit('snapshot-error', e.id);
    if (e.t && e.id !== null && e.p !== null && this.ownership.owns(e.p) && !this.stopping) void this.repair([e.id], 'notified');
  }

  /** Repairs the given errors one by one, retrying each a few times while the database is away. */
  private async repair(ids: readonly number[], source: 'notified' | 'pending'): Promise<void> {
    const { metrics, log } = this.deps;
    for (const id of ids) {
      let outcome: RepairOutcome | 'error' = 'error';
      for (let attempt = 1; attempt <= 5 && !this.stopping; attempt++) {
        try {
          outcome = await repairSnapshotError(this.deps.pool, id);
          // 'failed': the rebuild itself met a transient error (a deadlock
          // with a write-back, a lock timeout); the fold error stays pending,
          // so trying again shortly is what repairs it
          if (outcome !== 'failed') break;
          log.warn({ snapshotErrorId: id, attempt }, 'snapshot rebuild failed (see mana_ai.snapshot_errors.repair_error); retrying');
        } catch (error) {
          outcome = 'error';
          log.warn({ snapshotErrorId: id, attempt, err: coerceError(error).message }, 'snapshot repair failed; retrying');
        }
        if (attempt < 5) await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { jitter: true })));
      }
      metrics.snapshotRepairs.inc({ outcome });
      if (outcome === 'repaired') log.info({ snapshotErrorId: id, source }, 'snapshot repaired from the mission\'s rows after a transient fold error');
      else if (outcome !== 'not-pending') log.error({ snapshotErrorId: id, outcome }, 'snapshot could not be repaired; run npm run backfill for this mission (docs/ops.md)');
      this.emit('snapshot-repaired', { id, outcome });
    }
  }

  /**
   * POST /internal/tick: queues every mission of this daemon's partitions
   * that is due now and answers at once (the runs go through the same claim
   * as the wheel's, so a tick can never double a run).
   */
  async tick(): Promise<{ due: number; queued: number; partitions: number }> {
    const owned = [...this.ownership.owned];
    let due = 0;
    let queued = 0;
    for await (const page of owned.length ? loadDueNow(this.deps.pool, { partitions: owned, pageSize: this.tickPageSize }) : []) {
      due += page.length;
      for (const [sid, , partition, dueMs, agentRef, userRef] of page) {
        if (this.runs.pending(sid, dueMs)) continue;
        const slot = this.table.ensure(sid);
        this.table.partition[slot] = partition;
        this.table.agentRef[slot] = agentRef ?? NO_REF;
        this.table.userRef[slot] = userRef;
        this.wheel.cancel(slot);
        this.retryDue.delete(slot);
        this.runs.admit(sid, dueMs);
        if (this.runs.pending(sid, dueMs)) queued += 1;
      }
    }
    return { due, queued, partitions: owned.length };
  }

  /** Stops taking runs, lets runs in flight finish for `graceMs`, gives back the rest. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.wheel.close();
    this.gates.close();
    this.deepJobs?.stop();
    this.runs.close();
    // Partitions go first, so the other daemons schedule them while our
    // runs in flight finish (the claims keep those from running twice).
    await this.ownership.stop();
    await this.listener.close();
    await this.runs.finish(graceMs);
  }

}
