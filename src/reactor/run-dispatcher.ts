// Executing runs: the queue of due runs (round-robin, fair-queue.ts), each
// claimed in Postgres, then given one of `concurrency` planning slots and
// handed to executeRun (resolve, plan, write back, finish); what a claim
// refused goes back to the scheduler (retry later) or waits with its
// agent's gates. Deciding *when* a mission is due is the reactor's job
// (reactor.ts: wheel, notifications, ownership): this file never touches
// the wheel or the mission table, it asks its host.

import type { DeepResearchJobs } from '../research/deep-jobs.js';
import type { GuardedEmitter, ReactorEvents } from './events.js';
import { SpanStatusCode, type Span } from '@opentelemetry/api';
import { adoptClaims, claimRuns, type ClaimAgent, type Claimed, type ClaimRequest, type ClaimResult, type ClaimWitness } from '../db/sql/claim-run.js';
import { Batcher } from '../db/batcher.js';
import { releaseRuns, releaseUncounted } from '../db/sql/finish-run.js';
import { runRetryDelayMs } from '../db/error-class.js';
import { LlmError } from '../planner/llm-client.js';
import { executeRun, ShutdownError, type RunOutcome } from '../run/execute-run.js';
import { inSpan, userIdHash } from '../tracing/tracing.js';
import type { AgentDecision, AgentGates } from './agent-gates.js';
import { FairQueue } from './fair-queue.js';
import type { ReactorDeps } from './deps.js';
import { coerceError } from '../coerce-error.js';

/**
 * An agent's runs are all in this daemon's partition, so its slots are
 * counted here; a claim that still finds them taken saw a peer's run (a
 * partition handover) and is tried again after this long.
 */
const PEER_BUSY_RETRY_MS = 2_000;

/**
 * Runs claiming, or claimed and waiting for a planning slot, per slot
 * (issue 30). The claims of a burst go out together, and together they
 * are claimed set-based (mana_ai.claim_runs): a batch of 8–12 cost
 * PostgreSQL about half as much a claim as one of 2–4, and a burst's
 * claims half the round trips (bench:burst-cpu, docs/performance.md).
 * A claimed run waits for its slot boundedly (takePlanningSlot).
 */
export const CLAIMS_PER_SLOT = 3;

/**
 * Runs writing back, per planning slot, before no further run is claimed
 * (issue 30); in flight at most concurrency × (1 + CLAIMS_PER_SLOT + this):
 * claiming, planning, writing. The bound keeps a slow database from piling
 * plans up in memory. In a burst the write-backs (one batch at a time)
 * hold it there much of the time and the planning slots run dry, but 16
 * instead of 4 changed nothing measurable in bursts measured in both
 * orders: the two cores are the limit, not the bound (docs/performance.md,
 * thirteenth stop).
 */
export const WRITING_PER_SLOT = 4;

/** The decision metric's label for a gate the claim reported. */
const GATE_DECISION: Record<string, AgentDecision> = {
  'agent-paused': 'skipped-paused',
  'agent-archived': 'skipped-archived',
  'agent-deleted': 'skipped-archived',
};

/** Claim answers of an agent's gate: the mission waits with its agent. */
const AGENT_GATE_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['agent-paused', 'agent-archived', 'agent-deleted', 'agent-busy', 'over-budget']);

/** The key of one run of a mission (in flight, waited for). */
export const runKey = (sid: number, dueMs: number) => `${sid}@${dueMs}`;

/** What the dispatcher asks of the scheduler. */
export interface DispatchHost {
  /** the reactor: run events go out on it */
  events: GuardedEmitter<ReactorEvents>;
  partitionOf(sid: number): number | undefined;
  owns(partition: number): boolean;
  /** the mission's agent, undefined = none */
  agentRefOf(sid: number): number | undefined;
  /** the lane the mission's runs wait in (refs < 0: unknown user, no agent) */
  lanesOf(sid: number): { userRef: number; agentRef: number };
  /** try (sid, due) again at `atMs`, unless a newer schedule replaced it */
  retryLater(sid: number, dueMs: number, atMs: number): void;
  /** the lock session that vouches for our claims (sql/functions/claim.sql) */
  witness(): ClaimWitness;
  /** the membership session, for moving our claims to it after a reconnect; null while it is down */
  session(): { slot: number; pid: number } | null;
}

interface Deferred {
  resolve(outcome: RunOutcome): void;
}

export class RunDispatcher {
  private readonly queue = new FairQueue();
  private pumpScheduled = false;
  private readonly inFlight = new Set<string>();
  /** runs holding a planning slot, from their slot to their plan: at most `concurrency` (the LLM's load) */
  private readonly planning = new Set<string>();
  /** runs claiming, or claimed and waiting for a planning slot: at most `concurrency` × CLAIMS_PER_SLOT */
  private readonly claiming = new Set<string>();
  /** claimed runs waiting for a planning slot, in the order they were claimed */
  private readonly slotWaiters: (() => void)[] = [];
  private readonly claimed = new Map<number, string>(); // runId -> key
  /** runs a live peer holds: sid -> due; tried again when a peer dies */
  private readonly held = new Map<number, number>();
  private readonly waiters = new Map<string, Deferred[]>();
  /** run key -> agent ref, for runs counted against their agent's slots */
  private readonly countedRef = new Map<string, number>();
  /**
   * Runs admitted again while their key was still in flight (an agent gate
   * released the mission from inside the claim's own answer, or a claim
   * read an older gate than memory holds): admitted once that attempt ends,
   * so the mission is never in no wheel, queue or gate (issue 18, item 5).
   */
  private readonly readmit = new Set<string>();
  private readonly abort = new AbortController();
  /** claims of runs leaving the queue together share a statement; a lone one goes at once */
  private readonly claims = new Batcher<ClaimRequest, ClaimResult>((items) => claimRuns(this.deps.pool, items), 16);
  private stopping = false;

  constructor(
    private readonly deps: Omit<ReactorDeps, 'clock'> & { deepJobs?: DeepResearchJobs | null },
    private readonly gates: AgentGates,
    private readonly host: DispatchHost,
  ) {}

  private emit<K extends keyof ReactorEvents & string>(event: K, ...args: ReactorEvents[K]): void {
    this.host.events.emit(event, ...args);
  }

  get runsInFlight(): number {
    return this.inFlight.size;
  }

  get runsQueued(): number {
    return this.queue.size;
  }

  /**
   * (sid, due) waits in the queue or runs now. Asked for every mission a
   * load arms, a million at a cold start, when nothing runs yet: the run's
   * key (a string) is made only when some run is in flight.
   */
  pending(sid: number, dueMs: number): boolean {
    return (this.inFlight.size > 0 && this.inFlight.has(runKey(sid, dueMs))) || this.queue.has(sid, dueMs);
  }

  /** Runs held by a live peer, handed back (and forgotten here) when a peer died. */
  takeHeld(): [number, number][] {
    const held = [...this.held];
    this.held.clear();
    return held;
  }

  /**
   * A mission is due: past its agent's gates (in memory) to the queue, or
   * held back by its agent until the agent lets it run.
   */
  admit(sid: number, dueMs: number): void {
    if (this.stopping) return;
    const key = runKey(sid, dueMs);
    if (this.inFlight.has(key)) {
      this.readmit.add(key);
      return;
    }
    if (this.queue.has(sid, dueMs)) return;
    const ref = this.host.agentRefOf(sid);
    if (ref !== undefined) {
      const decision = this.gates.admit(ref, sid, dueMs);
      if (decision === 'ran') this.countedRef.set(key, ref);
      else if (decision !== 'unknown') {
        this.deps.metrics.agentDecisions.inc({ decision });
        this.emit('agent-held', { sid, dueMs, decision });
        return;
      }
    }
    this.push(sid, dueMs);
  }

  /** Queues (sid, due) and resolves when its run attempt ends (tests and tools; the wheel queues without a promise). */
  enqueue(sid: number, dueMs: number): Promise<RunOutcome> {
    const key = runKey(sid, dueMs);
    const p = new Promise<RunOutcome>((resolve) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve });
      this.waiters.set(key, list);
    });
    if (this.stopping) this.settle(key, 'shutdown');
    else this.push(sid, dueMs);
    return p;
  }

  /**
   * Queues a run in its user's and agent's lane. The queue is served once
   * the current burst is in (a microtask later), so runs due together are
   * taken round-robin, not in the order the wheel handed them over.
   */
  private push(sid: number, dueMs: number): void {
    if (this.inFlight.has(runKey(sid, dueMs))) return;
    const { userRef, agentRef } = this.host.lanesOf(sid);
    const replaced = this.queue.push(sid, dueMs, userRef, agentRef);
    if (typeof replaced === 'number') {
      // The mission moved on while it waited: the replaced run ends here,
      // and so does the agent slot it was counted against (item 6).
      const oldKey = runKey(sid, replaced);
      this.releaseSlot(oldKey);
      this.settle(oldKey, 'moved');
    }
    this.deps.metrics.runsQueued.set(this.queue.size);
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      queueMicrotask(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  /**
   * A claimed run: its planning slot (claimed ahead of one, it waits for
   * the next slot freed), then executeRun, which frees the slot once it has
   * its plan. A run that waited past the lease's allowance gives its claim
   * back uncounted ('retry': the same due time after a backoff).
   */
  private async planClaimed(sid: number, dueMs: number, key: string, startedAtMs: number, claim: Claimed, span: Span): Promise<RunOutcome> {
    const { config, log } = this.deps;
    const claimedAtMs = Date.now();
    const wait = this.takePlanningSlot(key);
    if (wait && !(await wait)) {
      this.deps.metrics.runRetries.inc({ reason: 'slot-wait' });
      await releaseUncounted(this.deps.pool, { runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, why: 'slot-wait' });
      log.info({ sid, dueAt: new Date(dueMs).toISOString() }, 'claimed run waited too long for a planning slot (mana-llm is slow); claim given back, tried again later');
      return 'retry';
    }
    if (this.abort.signal.aborted) throw new ShutdownError('shutting down');
    return executeRun(this.deps, { sid, dueMs, startedAtMs, claim, claimedAtMs, span }, this.abort.signal, {
      started: (e) => this.emit('run-started', e),
      finished: (e) => this.emit('run-finished', e),
      later: (atMs) => this.host.retryLater(sid, dueMs, atMs),
      planned: () => this.freePlanningSlot(key),
    });
  }

  /**
   * A planning slot for a claimed run: taken at once when one is free
   * (null), else a promise of the next one freed, in the order the runs
   * were claimed. It answers false when the run has waited longer than
   * half of what the claim's lease leaves beyond the worst case of one
   * run, so a claim never outlives its lease by waiting here.
   */
  private takePlanningSlot(key: string): Promise<boolean> | null {
    const take = () => {
      this.claiming.delete(key);
      this.planning.add(key);
      this.pump();
    };
    if (this.planning.size < this.deps.config.concurrency && this.slotWaiters.length === 0) {
      take();
      return null;
    }
    const { claimLeaseMs, worstCaseRunMs } = this.deps.config;
    const maxWaitMs = Math.max(0, Math.floor((claimLeaseMs - worstCaseRunMs) / 2));
    return new Promise<boolean>((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        take();
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.slotWaiters.indexOf(waiter);
        if (i >= 0) this.slotWaiters.splice(i, 1);
        resolve(false);
      }, maxWaitMs);
      timer.unref?.();
      this.slotWaiters.push(waiter);
    });
  }

  /**
   * The run's planning slot (if it holds one) goes to the claimed run that
   * has waited longest. With none waiting there is nothing to pump: the
   * queue waits for a claiming place, which a slot does not free.
   */
  private freePlanningSlot(key: string): void {
    if (!this.planning.delete(key)) return;
    this.slotWaiters.shift()?.();
  }

  /** The agent slot a run was counted against is given back, exactly once per run key. */
  private releaseSlot(key: string): void {
    const ref = this.countedRef.get(key);
    if (ref === undefined) return;
    this.countedRef.delete(key);
    this.gates.ended(ref);
  }

  private settle(key: string, outcome: RunOutcome): void {
    const list = this.waiters.get(key);
    this.waiters.delete(key);
    for (const w of list ?? []) w.resolve(outcome);
  }

  /**
   * Starts queued runs while fewer than `concurrency` × CLAIMS_PER_SLOT
   * are claiming. A run claims first and then takes a planning slot:
   * `concurrency` bounds the runs between slot and plan (the LLM's load),
   * and up to CLAIMS_PER_SLOT times as many are claimed ahead, so a slot
   * freed goes to a run whose claim is already answered instead of
   * waiting for one, and a burst's claims leave in batches (issue 30:
   * bench:burst-cpu). A planned run
   * writes back outside its slot, in the next batch
   * (src/write-back/write-back.ts). Runs writing back are bounded too
   * (WRITING_PER_SLOT per slot), so a slow database slows the claims down
   * instead of piling plans up in memory.
   */
  private pump(): void {
    const { concurrency } = this.deps.config;
    while (!this.stopping && this.claiming.size < concurrency * CLAIMS_PER_SLOT && this.inFlight.size < concurrency * (1 + CLAIMS_PER_SLOT + WRITING_PER_SLOT) && this.queue.size > 0) {
      const next = this.queue.pop()!;
      const key = runKey(next.sid, next.dueMs);
      this.inFlight.add(key);
      this.claiming.add(key);
      this.deps.metrics.runsInFlight.set(this.inFlight.size);
      this.deps.metrics.runsQueued.set(this.queue.size);
      void this.runOne(next.sid, next.dueMs, key);
    }
  }

  private async runOne(sid: number, dueMs: number, key: string): Promise<void> {
    let outcome: RunOutcome = 'error';
    const { config, metrics, log } = this.deps;
    // A run starts when it leaves the queue for a slot: the claim is its
    // first step. Lag is observed only for runs this daemon claims, so a
    // run lost to another daemon is not counted twice.
    const startedAtMs = Date.now();
    const { tracer } = this.deps.tracing;
    // no startTime: given one, OTel ends the span at Date.now() too, and the run's duration loses its sub-millisecond part
    const span = tracer.startSpan('mission.run', {
      attributes: { 'mission.sid': sid, 'mission.due': new Date(dueMs).toISOString(), 'mission.lag_ms': Math.max(0, startedAtMs - dueMs), 'mana_ai.worker': config.workerId },
    });
    try {
      const claim = await inSpan(tracer, span, 'mission.claim', {}, async (claimSpan) => {
        // the runs leaving the queue together are claimed in one statement (src/db/batcher.ts)
        const c = await this.claims.submit({
          sid, dueMs, workerId: config.workerId, leaseMs: config.claimLeaseMs, minGapMs: config.minRunGapMs, witness: this.host.witness(),
        });
        claimSpan.setAttribute('mana_ai.claim', c.outcome);
        return c;
      });
      metrics.claims.inc({ outcome: claim.outcome });
      const part = this.host.partitionOf(sid);
      if (claim.outcome === 'claimed') {
        this.held.delete(sid);
        this.claimed.set(claim.runId, key);
        if (claim.agent && part !== undefined) {
          const ref = claim.agent.ref;
          // Counted first, so the update below releases no mission into the slot this run holds.
          if (!this.countedRef.has(key)) {
            if (!this.gates.adopt(ref)) {
              this.gates.update(ref, part, claim.agent);
              this.gates.adopt(ref);
            }
            this.countedRef.set(key, ref);
          }
          this.gates.update(ref, part, claim.agent);
          this.gates.ran(ref);
          metrics.agentDecisions.inc({ decision: 'ran' });
        }
        if (span.isRecording()) span.setAttributes({ 'mission.id': claim.missionId, 'user.id_hash': userIdHash(claim.userId), 'mission.attempt': claim.attempts });
        try {
          outcome = await this.planClaimed(sid, dueMs, key, startedAtMs, claim, span);
        } finally {
          this.claimed.delete(claim.runId);
        }
        // Given back after a failure outside the mission: the same due time again, after a backoff.
        if (outcome === 'retry') this.host.retryLater(sid, dueMs, Date.now() + runRetryDelayMs(claim.attempts, config.runRetryBaseMs));
      } else {
        outcome = claim.outcome;
        // A run held by a live peer is retried when a peer dies (onPeerLost)
        // and, as the last resort, when its lease ends.
        if (claim.outcome === 'held') this.held.set(sid, dueMs);
        if (claim.outcome === 'held' || claim.outcome === 'throttled') this.host.retryLater(sid, dueMs, claim.retryAtMs);
        if ('agent' in claim && claim.agent) this.onAgentGate(sid, dueMs, key, part, claim.outcome, claim.agent, 'retryAtMs' in claim ? claim.retryAtMs : null);
      }
    } catch (error) {
      if (this.stopping || error instanceof ShutdownError || (error instanceof LlmError && error.reason === 'aborted')) {
        outcome = 'shutdown';
      } else {
        // Only the claim itself can fail here (executeRun ends every run it
        // was handed): nothing was claimed, so trying again is safe.
        outcome = 'error';
        metrics.missionErrors.inc({ reason: 'internal' });
        log.error({ sid, dueAt: new Date(dueMs).toISOString(), err: coerceError(error).message }, 'claim failed; retrying later');
        this.host.retryLater(sid, dueMs, Date.now() + 5_000 + Math.random() * 5_000);
      }
    } finally {
      span.setAttribute('mission.outcome', outcome);
      if (outcome === 'error' || outcome === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      span.end();
      this.inFlight.delete(key);
      this.claiming.delete(key);
      this.freePlanningSlot(key);
      this.releaseSlot(key); // may admit a mission of the same agent that waited for this slot
      // Only a claim its agent's gate refused hands the mission back from
      // inside the attempt; every other outcome has its own future (a
      // write-back, a retry time, a lease).
      if (this.readmit.delete(key) && !this.stopping && AGENT_GATE_OUTCOMES.has(outcome)) this.admit(sid, dueMs);
      metrics.runsInFlight.set(this.inFlight.size);
      metrics.runs.inc({ outcome });
      this.settle(key, outcome);
      this.pump();
      if (this.inFlight.size === 0 && this.queue.size === 0) this.emit('idle');
    }
  }

  /**
   * The claim said no because of the mission's agent: the mission waits in
   * memory (paused and the like: until the agent changes; budget: until the
   * computed time or a new budget; busy: until a run of ours ends), so no
   * query is made for it meanwhile.
   */
  private onAgentGate(sid: number, dueMs: number, key: string, part: number | undefined, outcome: string, agent: ClaimAgent, retryAtMs: number | null): void {
    if (part === undefined || !this.host.owns(part) || this.stopping) return;
    const { metrics, log } = this.deps;
    const ref = agent.ref;
    if (outcome === 'over-budget') {
      metrics.agentDecisions.inc({ decision: 'skipped-budget' });
      this.gates.update(ref, part, agent);
      this.gates.blockBudget(ref, sid, dueMs, retryAtMs);
      log.info(
        { sid, used: agent.used, budget: agent.budget, waitsUntil: retryAtMs === null ? null : new Date(retryAtMs).toISOString() },
        retryAtMs === null ? 'agent has no budget left; its missions wait until the budget is raised' : 'agent budget used up; its missions wait until the window frees enough',
      );
      this.emit('budget-wait', { sid, dueMs, untilMs: retryAtMs, used: agent.used ?? null, budget: agent.budget });
    } else if (outcome === 'agent-busy') {
      metrics.agentDecisions.inc({ decision: 'skipped-concurrency' });
      this.gates.update(ref, part, agent);
      const ours = (this.gates.fields(ref)?.admitted ?? 0) - (this.countedRef.get(key) === ref ? 1 : 0);
      if (ours >= agent.maxConcurrent) this.gates.hold(ref, sid, dueMs);
      else this.host.retryLater(sid, dueMs, Date.now() + Math.min(PEER_BUSY_RETRY_MS, Math.max(0, (retryAtMs ?? Infinity) - Date.now())));
      this.emit('agent-held', { sid, dueMs, decision: 'skipped-concurrency' });
    } else if (outcome in GATE_DECISION) {
      const decision = GATE_DECISION[outcome]!;
      metrics.agentDecisions.inc({ decision });
      this.gates.update(ref, part, agent);
      this.gates.hold(ref, sid, dueMs);
      this.emit('agent-held', { sid, dueMs, decision });
    }
  }

  /** Our lock connection is back under a new session: our runs in flight name it as their witness again. */
  async adoptInFlight(): Promise<void> {
    const witness = this.host.session();
    const runIds = [...this.claimed.keys()];
    if (!witness || runIds.length === 0) return;
    try {
      const kept = await adoptClaims(this.deps.pool, { runIds, workerId: this.deps.config.workerId, witness });
      this.deps.log.info({ inFlight: runIds.length, kept: kept.length }, 'runs in flight now vouched for by the new lock session');
    } catch (error) {
      this.deps.log.warn({ err: coerceError(error).message }, 'could not move the runs in flight to the new lock session; a peer may take them over');
    }
  }

  private drainQueue(): { sid: number; dueMs: number }[] {
    const out: { sid: number; dueMs: number }[] = [];
    for (let r = this.queue.pop(); r; r = this.queue.pop()) out.push(r);
    return out;
  }

  /** Stops taking runs: everything queued ends as `shutdown`. */
  close(): void {
    this.stopping = true;
    for (const r of this.drainQueue()) this.settle(runKey(r.sid, r.dueMs), 'shutdown');
  }

  /** Lets runs in flight finish for `graceMs`, then aborts them and gives their claims back. */
  async finish(graceMs: number): Promise<void> {
    if (this.inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        this.host.events.once('idle', () => {
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
}
