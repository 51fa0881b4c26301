// The agents' gates in memory: decides, without a query, whether a due
// mission of an agent may go to the claim now or must wait, and holds the
// waiting ones until their agent lets them run (CONTRACT.md section 10).
//
//   paused / archived / deleted  the mission waits here until the agent is
//                                active again (then it runs once, however
//                                many slots it missed: it has one due time)
//   maxConcurrent reached        it waits until a run of the agent ends
//   budget used up               it waits until the time the claim computed
//                                (one timer per agent), or until the budget
//                                changes
//
// What it knows comes from the load, from NOTIFYs on mana_ai_agents and
// from claims, which re-check everything in the database and stay the last
// guard; this class only saves the queries that would say "not now". It
// never queries and never decides for a mission whose agent it does not
// know (those go to the claim, which knows). Pure apart from the timers it
// is given.

import type { AgentGate } from '../db/sql/load-agents.js';

export type AgentDecision = 'ran' | 'skipped-paused' | 'skipped-archived' | 'skipped-concurrency' | 'skipped-budget';

/** 'absent': the agent record was removed; its missions run as missions without an agent. */
export type GateState = AgentGate | 'absent';

export interface AgentFields {
  version: number;
  gate: GateState;
  maxConcurrent: number;
  budget: number | null;
}

export interface WaitingMission {
  sid: number;
  dueMs: number;
}

interface AgentEntry extends AgentFields {
  partition: number;
  /** no claim before this (epoch ms); Infinity = not before the budget changes; null = not blocked */
  budgetUntilMs: number | null;
  /** since when its due missions wait for budget, for the operators' gauge */
  blockedSinceMs: number | null;
  /** runs of this agent admitted here and not yet ended (queued, claiming or in flight) */
  admitted: number;
  waiting: Map<number, number>;
  timer: unknown;
}

export interface AgentGatesOptions {
  now(): number;
  /** missions whose agent lets them run again; the caller admits them anew */
  onRelease(missions: WaitingMission[]): void;
  setTimer?(fn: () => void, ms: number): unknown;
  clearTimer?(timer: unknown): void;
}

/** setTimeout's limit; budget waits are at most 24 h anyway. */
const MAX_TIMER_MS = 2_147_483_647;

export class AgentGates {
  private readonly agents = new Map<number, AgentEntry>();
  /** sid -> ref of the agent it waits for */
  private readonly waitingOf = new Map<number, number>();
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (timer: unknown) => void;

  constructor(private readonly opts: AgentGatesOptions) {
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms).unref());
    this.clearTimer = opts.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  get size(): number {
    return this.agents.size;
  }

  get waitingCount(): number {
    return this.waitingOf.size;
  }

  fields(ref: number): (AgentFields & { admitted: number; waiting: number; budgetUntilMs: number | null }) | undefined {
    const e = this.agents.get(ref);
    return e && { version: e.version, gate: e.gate, maxConcurrent: e.maxConcurrent, budget: e.budget, admitted: e.admitted, waiting: e.waiting.size, budgetUntilMs: e.budgetUntilMs };
  }

  /**
   * New gate fields (load, notification or claim). Older versions than the
   * one known are ignored. A change of budget ends a budget wait; whatever
   * can run now is released.
   */
  update(ref: number, partition: number, f: AgentFields): void {
    let e = this.agents.get(ref);
    if (e && f.version < e.version) return;
    if (!e) {
      e = { ...f, partition, budgetUntilMs: null, blockedSinceMs: null, admitted: 0, waiting: new Map(), timer: null };
      this.agents.set(ref, e);
    } else {
      if (f.budget !== e.budget) this.endBudgetWait(e);
      e.version = f.version;
      e.gate = f.gate;
      e.maxConcurrent = f.maxConcurrent;
      e.budget = f.budget;
      e.partition = partition;
    }
    this.release(e);
  }

  /** A due mission of agent `ref`: may it go to the claim now? 'unknown' = no agent known here; let the claim decide. */
  admit(ref: number, sid: number, dueMs: number): AgentDecision | 'unknown' {
    const e = this.agents.get(ref);
    if (!e || e.gate === 'absent') return 'unknown';
    const decision = this.decide(e);
    if (decision === 'ran') {
      e.admitted += 1;
      this.unpark(sid);
    } else {
      this.park(ref, e, sid, dueMs);
    }
    return decision;
  }

  /** A run went to the claim without admit() knowing its agent, and the claim ran it under the agent: count it. */
  adopt(ref: number): boolean {
    const e = this.agents.get(ref);
    if (!e) return false;
    e.admitted += 1;
    return true;
  }

  /** A run counted by admit() or adopt() ended. */
  ended(ref: number): void {
    const e = this.agents.get(ref);
    if (!e) return;
    e.admitted = Math.max(0, e.admitted - 1);
    this.release(e);
  }

  /** The claim ran a mission of the agent: whatever budget wait there was is over. */
  ran(ref: number): void {
    const e = this.agents.get(ref);
    if (e) e.blockedSinceMs = null;
  }

  /** The claim found the agent not active (or busy by runs of a peer we already track): the mission waits here. */
  hold(ref: number, sid: number, dueMs: number): boolean {
    const e = this.agents.get(ref);
    if (!e) return false;
    this.park(ref, e, sid, dueMs);
    this.release(e); // the claim may have been stale: an update in between can let it go at once
    return true;
  }

  /**
   * The claim found the budget used up: the mission waits until `untilMs`
   * (null = until the budget changes), and so does every other due mission
   * of the agent, without a claim each.
   */
  blockBudget(ref: number, sid: number, dueMs: number, untilMs: number | null): boolean {
    const e = this.agents.get(ref);
    if (!e) return false;
    const until = untilMs ?? Number.POSITIVE_INFINITY;
    if (e.budgetUntilMs === null || until > e.budgetUntilMs) {
      if (e.timer !== null) this.clearTimer(e.timer);
      e.timer = null;
      e.budgetUntilMs = until;
      if (Number.isFinite(until)) {
        e.timer = this.setTimer(() => {
          e.timer = null;
          e.budgetUntilMs = null;
          this.release(e);
        }, Math.min(MAX_TIMER_MS, Math.max(0, until - this.opts.now())));
      }
    }
    e.blockedSinceMs ??= this.opts.now();
    this.park(ref, e, sid, dueMs);
    return true;
  }

  /** The mission was rescheduled, deleted or moved away: it no longer waits. */
  unpark(sid: number): void {
    const ref = this.waitingOf.get(sid);
    if (ref === undefined) return;
    this.waitingOf.delete(sid);
    this.agents.get(ref)?.waiting.delete(sid);
  }

  isWaiting(sid: number): boolean {
    return this.waitingOf.has(sid);
  }

  /** Partitions moved away: their agents and waiting missions are the new owner's. */
  dropPartitions(partitions: ReadonlySet<number>): void {
    for (const [ref, e] of this.agents) {
      if (!partitions.has(e.partition)) continue;
      if (e.timer !== null) this.clearTimer(e.timer);
      for (const sid of e.waiting.keys()) this.waitingOf.delete(sid);
      this.agents.delete(ref);
    }
  }

  /**
   * A load of `partitions` found exactly the agents `present`: every other
   * agent known here in those partitions was removed while its `absent`
   * notification was lost. It becomes 'absent' (its waiting missions go,
   * as missions without an agent); its counted runs stay counted until
   * they end.
   */
  markAbsentExcept(partitions: ReadonlySet<number>, present: ReadonlySet<number>): void {
    for (const [ref, e] of this.agents) {
      if (!partitions.has(e.partition) || present.has(ref) || e.gate === 'absent') continue;
      this.endBudgetWait(e);
      e.gate = 'absent';
      this.release(e);
    }
  }

  /** Agents whose due missions wait for budget now, and the longest such wait so far (seconds). */
  budgetBlocked(): { agents: number; maxSeconds: number } {
    const now = this.opts.now();
    let agents = 0;
    let max = 0;
    for (const e of this.agents.values()) {
      if (e.budgetUntilMs === null || e.blockedSinceMs === null || e.waiting.size === 0) continue;
      agents += 1;
      max = Math.max(max, (now - e.blockedSinceMs) / 1000);
    }
    return { agents, maxSeconds: max };
  }

  close(): void {
    for (const e of this.agents.values()) if (e.timer !== null) this.clearTimer(e.timer);
    this.agents.clear();
    this.waitingOf.clear();
  }

  private decide(e: AgentEntry): AgentDecision {
    if (e.gate === 'paused') return 'skipped-paused';
    if (e.gate === 'archived' || e.gate === 'deleted') return 'skipped-archived';
    if (e.budgetUntilMs !== null && e.budgetUntilMs > this.opts.now()) return 'skipped-budget';
    if (e.admitted >= e.maxConcurrent) return 'skipped-concurrency';
    return 'ran';
  }

  private park(ref: number, e: AgentEntry, sid: number, dueMs: number): void {
    const other = this.waitingOf.get(sid);
    if (other !== undefined && other !== ref) this.agents.get(other)?.waiting.delete(sid);
    e.waiting.set(sid, dueMs);
    this.waitingOf.set(sid, ref);
  }

  private endBudgetWait(e: AgentEntry): void {
    if (e.timer !== null) this.clearTimer(e.timer);
    e.timer = null;
    e.budgetUntilMs = null;
    e.blockedSinceMs = null;
  }

  /** Hands back, earliest due first, as many waiting missions as the agent can take now. */
  private release(e: AgentEntry): void {
    if (e.waiting.size === 0) return;
    let n: number;
    if (e.gate === 'absent') n = e.waiting.size;
    else if (e.gate !== 'active') return;
    else if (e.budgetUntilMs !== null && e.budgetUntilMs > this.opts.now()) return;
    else n = Math.max(0, e.maxConcurrent - e.admitted);
    if (n === 0) return;
    const out = [...e.waiting].map(([sid, dueMs]) => ({ sid, dueMs })).sort((a, b) => a.dueMs - b.dueMs || a.sid - b.sid).slice(0, n);
    for (const m of out) {
      e.waiting.delete(m.sid);
      this.waitingOf.delete(m.sid);
    }
    this.opts.onRelease(out);
  }
}
