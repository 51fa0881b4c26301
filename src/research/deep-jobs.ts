// Deep research jobs for the missions of this daemon's partitions (issue
// 31): one mana-research job per (mission, due time), never a second while
// one is pending, submitted ahead of the due time when the previous run
// knew it (or at the claim otherwise), polled here on timers (doubling from
// MANA_AI_DEEP_RESEARCH_POLL_MS to 5 min) without holding a claim or an
// agent's slot, the answer kept until a planned iteration used it, a job
// older than MANA_AI_DEEP_RESEARCH_MAX_AGE_MS abandoned. When a job ends
// the mission's run is woken at once. Every step is recorded in
// research_jobs (user-scoped), so a restart or a moved partition resumes
// the polls (`resume`). Never throws into a run; never logs a query.

import type pg from 'pg';
import type { Db } from '../db/pool.js';
import { withUserScope } from '../db/scoped.js';
import { insertJob, jobRunStillDue, missionJobs, pendingJobs, updateJob } from '../db/sql/research-jobs.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { coerceError } from '../coerce-error.js';
import type { ResearchClient } from './mana-research.js';
import { localDay, type ResearchBlock } from './research.js';
import type { Source } from './mana-search.js';
import { recordResearch, type ResearchOutcome } from '../db/sql/research-runs.js';

export interface DeepJobsConfig {
  provider: string;
  leadMs: number;
  pollMs: number;
  maxAgeMs: number;
  /** jobs per mission per 24 h */
  dailyCap: number;
}

export interface DeepRun {
  sid: number;
  userId: string;
  missionId: string;
  dueMs: number;
  agentId: string | null;
  query: string;
}

export type DeepDecision =
  | { kind: 'use'; jobId: number; block: ResearchBlock }
  | { kind: 'wait'; untilMs: number }
  | { kind: 'without'; block: ResearchBlock };

const MAX_POLL_MS = 300_000;
const DAY_MS = 86_400_000;

export class DeepResearchJobs {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly ahead = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly d: {
    db: Db;
    pool: pg.Pool;
    client: ResearchClient;
    config: DeepJobsConfig;
    metrics: Metrics;
    log: Logger;
    /** wakes the run of (mission, due time) now: its job ended */
    wake: (sid: number, dueMs: number) => void;
    /** the zone whose calendar day a run's research row is filed under */
    timeZone: string;
  }) {
    // upstream's counters, exported at 0 for the configured provider
    for (const m of [d.metrics.researchJobsSubmitted, d.metrics.researchJobsCompleted, d.metrics.researchJobsFailed]) m.inc({ provider: d.config.provider }, 0);
    d.metrics.researchPendingSkips.inc(0);
  }

  /** What a run of a mission asking for deep research does now. */
  async forRun(run: DeepRun, nowMs = Date.now()): Promise<DeepDecision> {
    const { config: c } = this.d;
    // each run's research is the user's to read (GET /api/v1/me/ai-research), deep as news
    const record = (outcome: ResearchOutcome, sources: Source[]) =>
      withUserScope(this.d.db, run.userId, (trx) => recordResearch(trx, {
        userId: run.userId, missionId: run.missionId, dueAt: new Date(run.dueMs), kind: 'deep', query: run.query, language: 'de',
        localDay: localDay(nowMs, this.d.timeZone), outcome, sources,
      }));
    const without = async (outcome: ResearchBlock['outcome']): Promise<DeepDecision> => {
      this.d.metrics.research.inc({ kind: 'deep', outcome });
      await record(outcome, []);
      return { kind: 'without', block: { kind: 'deep', query: run.query, outcome, sources: [] } };
    };
    const jobs = await withUserScope(this.d.db, run.userId, (trx) => missionJobs(trx, { userId: run.userId, missionId: run.missionId, sinceMs: nowMs - DAY_MS - c.maxAgeMs }));
    // a kept answer, young enough: a retry, or the next due time after a failed plan, uses it instead of paying again
    const kept = jobs.find((j) => j.status === 'completed' && j.query === run.query && j.answer && j.finishedMs !== null && nowMs - j.finishedMs <= c.maxAgeMs);
    if (kept) {
      const outcome = kept.dueMs === run.dueMs ? 'ok' : 'cached';
      this.d.metrics.research.inc({ kind: 'deep', outcome });
      await record(outcome, kept.answer!.citations);
      return { kind: 'use', jobId: kept.id, block: { kind: 'deep', query: run.query, outcome: 'ok', sources: kept.answer!.citations, answer: kept.answer!.answer } };
    }
    const mine = jobs.find((j) => j.dueMs === run.dueMs);
    if (mine && (mine.status === 'pending' || mine.status === 'completed') && mine.query !== run.query) {
      // the mission's question changed while its job ran: that answer is not this run's
      await this.end(run.userId, mine.id, 'abandoned');
      return without('abandoned');
    }
    if (mine) {
      if (mine.status === 'pending') {
        if (nowMs - mine.submittedMs > c.maxAgeMs) {
          await this.end(run.userId, mine.id, 'abandoned');
          return without('abandoned');
        }
        this.d.metrics.researchPendingSkips.inc();
        if (!this.timers.has(mine.id) && mine.taskId) this.schedulePoll({ ...run, id: mine.id, taskId: mine.taskId, polls: mine.polls, submittedMs: mine.submittedMs }, 0);
        return { kind: 'wait', untilMs: mine.submittedMs + c.maxAgeMs + 1_000 };
      }
      return without(mine.status === 'failed' ? 'failed' : 'abandoned');
    }
    // a job of another due time still pending: the mission moved on (changed, or its run was missed); it is abandoned
    for (const j of jobs) if (j.status === 'pending') await this.end(run.userId, j.id, 'abandoned');
    if (jobs.length >= c.dailyCap) return without('skipped');
    const submitted = await this.submit(run);
    if (submitted === null) return without('failed');
    return { kind: 'wait', untilMs: nowMs + c.maxAgeMs + 1_000 };
  }

  /** After a planned iteration was written with the answer: it is used, never paid for again. */
  async markUsed(userId: string, jobId: number): Promise<void> {
    await withUserScope(this.d.db, userId, (trx) => updateJob(trx, jobId, { status: 'used', used: true }));
  }

  /** After a run: the next due time's job is submitted lead ahead of it (in memory; the claim submits it otherwise). */
  scheduleAhead(run: DeepRun, nowMs = Date.now()): void {
    if (this.stopped) return;
    const key = `${run.userId}\u0000${run.missionId}`;
    clearTimeout(this.ahead.get(key));
    const at = run.dueMs - this.d.config.leadMs;
    const t = setTimeout(() => {
      this.ahead.delete(key);
      void this.submitAhead(run).catch((error) => this.d.log.warn({ missionId: run.missionId, err: coerceError(error).message }, 'deep research could not be submitted ahead; the claim submits it'));
    }, Math.max(0, at - nowMs));
    t.unref();
    this.ahead.set(key, t);
  }

  /** The pending jobs of these partitions are polled again (start, partitions acquired). */
  async resume(partitions: readonly number[]): Promise<void> {
    for (const j of await pendingJobs(this.d.pool, partitions)) {
      if (!this.timers.has(j.id) && j.taskId) this.schedulePoll({ ...j, taskId: j.taskId }, 0);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    for (const t of this.ahead.values()) clearTimeout(t);
    this.timers.clear();
    this.ahead.clear();
  }

  private async submitAhead(run: DeepRun): Promise<void> {
    const jobs = await withUserScope(this.d.db, run.userId, (trx) => missionJobs(trx, { userId: run.userId, missionId: run.missionId, sinceMs: Date.now() - DAY_MS }));
    if (jobs.some((j) => j.status === 'pending' || j.dueMs === run.dueMs) || jobs.length >= this.d.config.dailyCap) return;
    await this.submit(run);
  }

  /** One job for (mission, due time): the row first (one per due time), then mana-research. Null: it could not be submitted. */
  private async submit(run: DeepRun): Promise<number | null> {
    const { config: c, metrics } = this.d;
    const id = await withUserScope(this.d.db, run.userId, (trx) => insertJob(trx, { ...run, provider: c.provider }));
    if (id === null) return null;
    const r = await this.d.client.submit(run.userId, run.query, c.provider);
    if (!r.ok) {
      metrics.researchJobsFailed.inc({ provider: c.provider });
      this.d.log.warn({ missionId: run.missionId, reason: r.reason }, 'deep research could not be submitted; the run is planned without it');
      await withUserScope(this.d.db, run.userId, (trx) => updateJob(trx, id, { status: 'failed', error: r.reason, finished: true }));
      return null;
    }
    metrics.researchJobsSubmitted.inc({ provider: c.provider });
    await withUserScope(this.d.db, run.userId, (trx) => updateJob(trx, id, { taskId: r.taskId }));
    this.schedulePoll({ ...run, id, taskId: r.taskId, polls: 0, submittedMs: Date.now() }, c.pollMs);
    return id;
  }

  private schedulePoll(j: { id: number; userId: string; missionId: string; sid: number; dueMs: number; taskId: string; polls: number; submittedMs: number }, delayMs: number): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(j.id);
      void this.poll(j).catch((error) => {
        this.d.log.warn({ missionId: j.missionId, err: coerceError(error).message }, 'deep research poll failed; polling again');
        this.schedulePoll({ ...j, polls: j.polls + 1 }, this.nextDelay(j.polls + 1));
      });
    }, Math.max(0, Math.min(delayMs, j.submittedMs + this.d.config.maxAgeMs + 1 - Date.now())));
    t.unref();
    this.timers.set(j.id, t);
  }

  private nextDelay(polls: number): number {
    return Math.min(MAX_POLL_MS, this.d.config.pollMs * 2 ** Math.min(polls, 20));
  }

  private async poll(j: { id: number; userId: string; missionId: string; sid: number; dueMs: number; taskId: string; polls: number; submittedMs: number }): Promise<void> {
    const { config: c, metrics } = this.d;
    if (Date.now() - j.submittedMs > c.maxAgeMs) {
      await this.end(j.userId, j.id, 'abandoned');
      this.d.wake(j.sid, j.dueMs);
      return;
    }
    // paused, archived, deleted or rescheduled since: the job's answer has no run to go to
    if (!(await jobRunStillDue(this.d.pool, j))) {
      await this.end(j.userId, j.id, 'abandoned');
      this.d.log.info({ missionId: j.missionId }, 'deep research abandoned: the mission was paused, archived, deleted or rescheduled');
      return;
    }
    const r = await this.d.client.status(j.userId, j.taskId);
    if (r.ok && r.status === 'completed') {
      metrics.researchJobsCompleted.inc({ provider: c.provider });
      await withUserScope(this.d.db, j.userId, (trx) => updateJob(trx, j.id, { status: 'completed', answer: r.answer, polls: j.polls + 1, finished: true }));
      this.d.wake(j.sid, j.dueMs);
      return;
    }
    if (r.ok && (r.status === 'failed' || r.status === 'cancelled')) {
      metrics.researchJobsFailed.inc({ provider: c.provider });
      await withUserScope(this.d.db, j.userId, (trx) => updateJob(trx, j.id, { status: 'failed', error: r.error, polls: j.polls + 1, finished: true }));
      this.d.wake(j.sid, j.dueMs);
      return;
    }
    // queued, running, or an answer that said nothing (5xx, timeout): asked again later
    await withUserScope(this.d.db, j.userId, (trx) => updateJob(trx, j.id, { polls: j.polls + 1 }));
    this.schedulePoll({ ...j, polls: j.polls + 1 }, this.nextDelay(j.polls + 1));
  }

  private async end(userId: string, id: number, status: 'abandoned'): Promise<void> {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    await withUserScope(this.d.db, userId, (trx) => updateJob(trx, id, { status, finished: true }));
  }
}

