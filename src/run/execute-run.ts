// Executes one claimed run: read the mission, plan it (inputs, prompt, LLM,
// parser), write the iteration back. Deciding *when* a mission runs is the
// reactor's job; this module only carries out a run it was handed.
//
// Its promise: every run ends, and the mission keeps a future. A failure
// outside the mission (the database, a lost connection, a lock or statement
// timeout, a revoked right) gives the claim back; the dispatcher tries the
// same due time again after a backoff, and after MAX_ATTEMPTS claims that
// try writes a failed iteration with the next due time instead of asking
// the LLM again. A failure of the mission's content (or a bug it triggers)
// writes a failed iteration with the next due time at once. Only when even
// that write fails is the run ended as `failed` with nothing written. A
// shutdown leaves a run open, and stop() gives those claims back.

import type { webcrypto } from 'node:crypto';
import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/pool.js';
import type { Claimed } from '../db/sql/claim-run.js';
import { finishRun, giveBackRun, readPendingPlan, releaseUncounted, type PendingPlan } from '../db/sql/finish-run.js';
import { classifyFailure } from '../db/error-class.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { nextRunOfRecord } from '../mission/cadence.js';
import { readAgent, type Agent } from '../agent/agent.js';
import { encryptedFields, plainText, readMission, type Mission } from '../mission/mission.js';
import { LlmError, type LlmClient } from '../planner/llm-client.js';
import { isLlmOutage, planMission, type RunUsage } from '../planner/plan-mission.js';
import { answerCharger } from './charge.js';
import { recheckKeptPlan } from '../planner/recheck-kept-plan.js';
import { catalogFor } from '../planner/catalog/index.js';
import type { Memberships } from '../auth/memberships.js';
import type { RunnerKeys } from '../grants/runner-keys.js';
import { researchRequest, type ResearchRequest } from '../research/research-request.js';
import type { DeepResearchJobs } from '../research/deep-jobs.js';
import type { ResearchBlock } from '../research/research.js';
import type { ResolverRegistry } from '../planner/resolvers/registry.js';
import { retryDelayMs } from '../reactor/backoff.js';
import { failedIteration, iterationIdFor, type Iteration } from '../write-back/iteration.js';
import { verifiedMissionSpace, writeBack } from '../write-back/write-back.js';
import type { Span } from '@opentelemetry/api';
import { inSpan, type Tracing } from '../tracing/tracing.js';
import { coerceError } from '../coerce-error.js';

/** A run whose daemon died this often is written as failed, not planned again. */
export const MAX_ATTEMPTS = 3;

export { RUN_OUTCOMES, type RunOutcome } from './run-outcome.js';
import type { RunOutcome } from './run-outcome.js';

export interface RunEvent {
  sid: number;
  dueMs: number;
  outcome: RunOutcome;
  userId?: string;
  missionId?: string;
  iteration?: Iteration;
  nextRunAtMs?: number | null;
  title?: string;
  /** why a run ended as failed without a write-back */
  error?: string;
  /** the agent the run ran under */
  agentId?: string;
  /** tokens charged to the run (mana_ai.token_usage) */
  tokens?: { used: number; estimated: boolean } | null;
}

/** A run has started: it was claimed and is being executed. */
export interface RunStartedEvent {
  sid: number;
  dueMs: number;
  startedAtMs: number;
  lagMs: number;
  userId: string;
  missionId: string;
  title: string;
}

export interface RunDeps {
  pool: pg.Pool;
  db: Db;
  config: Pick<Config, 'workerId' | 'timeZone' | 'webapp' | 'plannerMode' | 'maxConsecutiveFailures'> & Partial<Pick<Config, 'searchUrl' | 'researchRegexes' | 'researchTimeoutMs' | 'writeBackLockWaitMs'>>;
  log: Logger;
  metrics: Metrics;
  llm: LlmClient;
  resolvers: ResolverRegistry;
  /** The runner's RSA keys for mission grants (MANA_AI_PRIVATE_KEY_PEM, MANA_AI_PREVIOUS_PRIVATE_KEY_PEM). */
  runnerKeys: RunnerKeys;
  /** deep research jobs (issue 31); null or absent when deep research is off */
  deepJobs?: DeepResearchJobs | null;
  tracing: Tracing;
  /** tests: how long a parked mission waits to be looked at again (default: its cadence) */
  parkedRecheckMs?: number;
  /** the owners' shared spaces from mana-auth; absent without MANA_AUTH_URL (personal inputs only) */
  memberships?: Memberships | null;
}

export interface RunHooks {
  started(e: RunStartedEvent): void;
  finished(e: RunEvent): void;
  /** look at this (mission, due time) again at `atMs` (a parked mission) */
  later?(atMs: number): void;
  /**
   * The run has its plan (or knows it needs none) and goes on to write it
   * back: the planning slot it held is free for the next run (issue 30).
   * Called at most once; a run that ends first frees it by ending.
   */
  planned?(): void;
}

/** How long a parked mission waits until it is looked at again: its cadence's interval, between a minute and a day. */
export function parkedRecheckMs(record: Record<string, unknown>, nowMs: number, timeZone: string): number {
  const next = nextRunOrNone(record, nowMs, timeZone);
  return Math.min(86_400_000, Math.max(60_000, next === null ? 3_600_000 : next - nowMs));
}

/** nextRunOfRecord on the paths that already handle a failure: whatever it throws counts as no next run. */
function nextRunOrNone(record: Record<string, unknown>, nowMs: number, timeZone: string): number | null {
  try {
    return nextRunOfRecord(record, nowMs, timeZone);
  } catch {
    return null;
  }
}

export class ShutdownError extends Error {
  override name = 'ShutdownError';
}

type RunInput = {
  sid: number; dueMs: number; startedAtMs: number; claim: Claimed;
  /** when the claim answered; a run claimed ahead of a planning slot waited from then until now (absent: it did not wait) */
  claimedAtMs?: number;
  /** the run's span: resolve, LLM and write-back are its children */
  span: Span;
};

/**
 * Executes a claimed run. Its answers' charges ride with its write-back
 * (src/db/sql/run-writes.ts); the run ends, and says so, only once every
 * charge it submitted is settled.
 */
export async function executeRun(deps: RunDeps, run: RunInput, signal: AbortSignal, hooks: RunHooks): Promise<RunOutcome> {
  const charges: Promise<void>[] = [];
  let ended: RunEvent | null = null;
  try {
    return await executeClaimedRun(deps, run, signal, { ...hooks, finished: (e) => void (ended = e) }, charges);
  } finally {
    await Promise.all(charges);
    if (ended) hooks.finished(ended);
  }
}

/** What every step of one run reads: the run, its dependencies, its logger and what its events carry. */
interface RunScope {
  deps: RunDeps;
  run: RunInput;
  signal: AbortSignal;
  hooks: RunHooks;
  /** bound to userId, missionId and iterationId */
  log: Logger;
  /** the iteration this (mission, due time) writes, whichever way the run ends */
  iterationId: string;
  /** the agent as the claim read it: its policy and prompt hold for this run */
  agent: Agent | null;
  /** what every event of this run carries */
  base: Pick<RunEvent, 'sid' | 'dueMs' | 'userId' | 'missionId' | 'title' | 'agentId'>;
}

/** A plan made (or kept, or written as failed without asking) and ready to be written back. */
interface ReadyPlan {
  planned: PendingPlan;
  /** every attempt failed outside the mission: written, never counted towards the park */
  outsideFailure: boolean;
  research: ResearchRequest;
}

// One run, in the order of its ways out: unreadable (skipped), parked,
// waiting for deep research, written (planned or failed), and after an
// error either given back (outside the mission) or written as failed.
async function executeClaimedRun(deps: RunDeps, run: RunInput, signal: AbortSignal, hooks: RunHooks, charges: Promise<void>[]): Promise<RunOutcome> {
  const { sid, dueMs, startedAtMs, claim } = run;
  // the run's one logger: every line of the run, the planner's too, carries these three (each key once)
  const iterationId = iterationIdFor(claim.userId, claim.missionId, dueMs);
  const log = deps.log.child({ userId: claim.userId, missionId: claim.missionId, iterationId });
  const lagMs = Math.max(0, startedAtMs - dueMs);
  deps.metrics.dueLag.observe(lagMs / 1000);
  // never a ciphertext: an `enc:<n>:` title becomes a placeholder (issue 21)
  const title = plainText(claim.record, 'title');
  for (const field of encryptedFields(claim.record)) deps.metrics.encryptedMissionFields.inc({ field });
  const agent: Agent | null = claim.agent?.id !== undefined && claim.agent.record ? readAgent(claim.agent.id, claim.agent.record) : null;
  const s: RunScope = { deps, run, signal, hooks, log, iterationId, agent, base: { sid, dueMs, userId: claim.userId, missionId: claim.missionId, title, ...(agent ? { agentId: agent.id } : {}) } };
  hooks.started({ sid, dueMs, startedAtMs, lagMs, userId: claim.userId, missionId: claim.missionId, title });
  const now = Date.now();
  const claimedAtMs = run.claimedAtMs ?? now;
  log.info({ dueAt: new Date(dueMs).toISOString(), attempt: claim.attempts, lagMs, claimMs: claimedAtMs - startedAtMs, slotWaitMs: now - claimedAtMs }, 'run started');

  // The plan once the LLM (or an earlier attempt) made it: a write-back
  // that fails outside the mission keeps it with the claim (sql/migrations/020_baseline.sql).
  let planned: PendingPlan | null = null;
  try {
    const read = readMission(claim.record);
    if (!read.ok) return await skipUnreadable(s, read.reason);
    // Parked (sql/functions/unpark.sql): until the user changes the mission
    // (the trigger unparks it then) the claim goes back unchanged and it is
    // looked at again a cadence later; the LLM is not asked. The claim
    // itself read the flag (one round trip less, issue 30).
    if (claim.parked) return await releaseParked(s);
    const ready = await planRun(s, read.mission, charges);
    if (ready === 'waiting') return 'waiting';
    planned = ready.planned;
    hooks.planned?.();
    if (signal.aborted) throw new ShutdownError('shutting down');
    return await writePlanned(s, read.mission, ready);
  } catch (error) {
    if (signal.aborted || error instanceof ShutdownError || (error instanceof LlmError && error.reason === 'aborted')) throw error;
    const thrown = coerceError(error);
    const message = `${thrown.name}: ${thrown.message}`.slice(0, 480);
    // mana-llm's outage (after the run's own attempts) is outside the
    // mission like the database's: given back, retried, never parked.
    const failure = isLlmOutage(error) ? { outside: true as const, reason: `llm-${error.reason}` } : classifyFailure(error);
    if (failure.outside) return await giveBack(s, failure.reason, message, planned);
    return await writeRunError(s, message);
  }
}

/** The record cannot be read as a mission: skipped for this due time. */
async function skipUnreadable(s: RunScope, reason: string): Promise<RunOutcome> {
  const { deps, run: { claim } } = s;
  await finishRun(deps.pool, { runId: claim.runId, workerId: deps.config.workerId, attempts: claim.attempts, status: 'skipped', error: reason });
  deps.metrics.missionsSkipped.inc({ reason });
  s.log.warn({ reason }, 'mission record unreadable; skipped for this due time');
  s.hooks.finished({ ...s.base, outcome: 'skipped' });
  return 'skipped';
}

/** A parked mission: the claim goes back, and it is looked at again a cadence later. */
async function releaseParked(s: RunScope): Promise<RunOutcome> {
  const { deps, run: { claim } } = s;
  await releaseUncounted(deps.pool, { runId: claim.runId, workerId: deps.config.workerId, attempts: claim.attempts });
  const recheckMs = deps.parkedRecheckMs ?? parkedRecheckMs(claim.record, Date.now(), deps.config.timeZone);
  s.hooks.later?.(Date.now() + recheckMs);
  s.log.info({ recheckInMs: recheckMs }, 'mission is parked after failing repeatedly; not planned until the user changes it');
  s.hooks.finished({ ...s.base, outcome: 'parked' });
  return 'parked';
}

/**
 * The plan to write: an earlier attempt's (its write-back had failed), a
 * failed iteration once every attempt failed outside the mission, or the
 * planner's. `waiting`: deep research is still running, and the run waits
 * for it without a claim (the job's end wakes it).
 */
async function planRun(s: RunScope, mission: Mission, charges: Promise<void>[]): Promise<ReadyPlan | 'waiting'> {
  const { deps, agent, log, iterationId, run: { sid, dueMs, startedAtMs, claim, span } } = s;
  const { config, metrics } = deps;
  const startedAt = new Date(startedAtMs);
  const earlier = claim.attempts > 1 ? await readPendingPlan(deps.pool, claim.runId) : null;
  // what the mission asks to research (issue 31); deep only when deep research is on here
  const research = researchRequest(claim.record, { regexes: config.researchRegexes ?? false, deepEnabled: !!deps.deepJobs });
  if (earlier) {
    // An earlier attempt planned this due time and could not write it:
    // write that plan, do not ask the LLM again; checked again against the
    // agent's policy as this claim read it.
    const { iteration, failure, usage } = earlier;
    const rechecked = recheckKeptPlan(iteration, agent, catalogFor(config.webapp));
    if (rechecked.dropped > 0) metrics.planStepsRejected.inc({ reason: 'denied-tool' }, rechecked.dropped);
    log.info({ attempt: claim.attempts, dropped: rechecked.dropped }, 'writing the plan an earlier attempt made (its write-back had failed)');
    return { planned: { iteration: rechecked.iteration, failure, usage, researchJobId: earlier.researchJobId ?? null }, outsideFailure: false, research };
  }
  if (claim.attempts > MAX_ATTEMPTS) {
    // Every attempt failed outside the mission (the database, mana-llm):
    // written so the user sees it, with the next due time, never counted
    // towards the park.
    const iteration = failedIteration(iterationId, startedAt.toISOString(), new Date().toISOString(), 'too-many-attempts');
    return { planned: { iteration, failure: 'too-many-attempts', usage: null, researchJobId: null }, outsideFailure: true, research };
  }
  // Deep research (issue 31): a job still running means the run waits for it without a claim (the
  // job's end wakes it); a kept answer is used; news research happens inside the planning pass.
  let deepBlock: ResearchBlock | null = null;
  let deepJobId: number | null = null;
  if (research.kind === 'deep' && deps.deepJobs) {
    const d = await deps.deepJobs.forRun({ sid, userId: claim.userId, missionId: claim.missionId, dueMs, agentId: agent?.id ?? null, query: research.query });
    if (d.kind === 'wait') {
      await releaseUncounted(deps.pool, { runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, why: 'research-pending' });
      s.hooks.later?.(d.untilMs);
      log.info({ waitUntil: new Date(d.untilMs).toISOString() }, 'deep research pending; the run waits for it without a claim, and is woken when it ends');
      s.hooks.finished({ ...s.base, outcome: 'waiting' });
      return 'waiting';
    }
    deepBlock = d.block;
    if (d.kind === 'use') deepJobId = d.jobId;
  }
  const { iteration, failure, usage } = await planMission(
    {
      db: deps.db, llm: deps.llm, resolvers: deps.resolvers, metrics, log, runnerKeys: deps.runnerKeys, tracing: deps.tracing, span, catalog: catalogFor(config.webapp), mode: config.plannerMode, memberships: deps.memberships ?? null,
      research: deepBlock ? { block: deepBlock } : {
        request: research,
        deps: { db: deps.db, searchUrl: config.searchUrl ?? null, timeZone: config.timeZone, timeoutMs: config.researchTimeoutMs ?? 10_000, metrics, log },
        dueMs,
      },
      onAnswer: collect(charges, answerCharger(deps.db, metrics, log, { userId: claim.userId, agentId: agent?.id ?? null, missionId: claim.missionId, runId: claim.runId, attempts: claim.attempts }, s.signal)),
    },
    { userId: claim.userId, missionId: claim.missionId, iterationId, startedAt },
    mission,
    agent,
    s.signal,
  );
  return { planned: { iteration, failure, usage, researchJobId: deepJobId }, outsideFailure: false, research };
}

/** Writes the plan back (the iteration and the next due time) and says how the run ended. */
async function writePlanned(s: RunScope, mission: Mission, ready: ReadyPlan): Promise<RunOutcome> {
  const { deps, agent, log, run: { sid, dueMs, claim, span } } = s;
  const { config, metrics } = deps;
  const { planned: { iteration, failure, usage }, outsideFailure, research } = ready;
  const deepJobId = ready.planned.researchJobId ?? null;
  const spaceId = await verifiedMissionSpace(deps.db, { userId: claim.userId, missionId: claim.missionId, spacesOf: deps.memberships ? (u) => deps.memberships!.of(u) : null });
  const written = await inSpan(deps.tracing.tracer, span, 'mission.write_back', {}, () => writeBack(deps.db, {
    runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, sid, dueMs,
    userId: claim.userId, missionId: claim.missionId, iteration, nowMs: Date.now(),
    agent: agent ? { id: agent.id, nameAtClaim: agent.name, rationale: mission.objective } : null,
    generation: config.webapp, objective: mission.objective, maxConsecutiveFailures: config.maxConsecutiveFailures, outsideFailure, failureReason: failure, spaceId,
    // a row held past this sends the run back with its plan kept (giveBack below: lock-timeout)
    ...(config.writeBackLockWaitMs !== undefined ? { lockWaitMs: config.writeBackLockWaitMs } : {}),
    // The cadence as it stands under the write-back's lock: the user may have changed it during the run.
    nextRunAt: (record, nowMs) => nextRunOfRecord(record, nowMs, config.timeZone),
  }, { version: claim.version, record: claim.record }));
  if (written.outcome !== 'written') {
    log.warn({ outcome: written.outcome }, 'run not written back');
    s.hooks.finished({ ...s.base, outcome: written.outcome, iteration });
    return written.outcome;
  }
  metrics.plansWrittenBack.inc();
  if (deps.deepJobs && research.kind === 'deep') {
    // the answer a planned iteration used is never paid for again; the next due time's job goes ahead of it
    if (deepJobId !== null && !failure) await deps.deepJobs.markUsed(claim.userId, deepJobId).catch((error) => log.warn({ err: coerceError(error).message }, 'deep research answer could not be marked used; the next run may use it again'));
    if (written.nextRunAtMs !== null) deps.deepJobs.scheduleAhead({ sid, userId: claim.userId, missionId: claim.missionId, dueMs: written.nextRunAtMs, agentId: agent?.id ?? null, query: research.query });
  }
  if (written.parked) {
    metrics.missionsParked.inc();
    log.warn({ maxConsecutiveFailures: config.maxConsecutiveFailures }, 'mission parked: it failed too often in a row; the user sees why, and any change of the mission brings it back');
  }
  const budget = claim.agent?.budget ?? null;
  const overshoot = budget !== null && usage ? (claim.agent?.used ?? 0) + usage.tokens - budget : 0;
  if (overshoot > 0) {
    log.info({ agentId: agent?.id, budget, overshoot }, 'this run took the agent over its daily budget; its next runs wait (the plan is written, as upstream does)');
  }
  const outcome: RunOutcome = failure ? 'failed' : 'planned';
  if (failure) metrics.missionErrors.inc({ reason: failure.split(':')[0]! });
  log.info(
    {
      outcome, steps: iteration.plan.length, failure, scheduleKept: written.scheduleKept,
      nextRunAt: written.nextRunAtMs === null ? null : new Date(written.nextRunAtMs).toISOString(),
    },
    written.scheduleKept ? 'run written back; the user changed the schedule during the run, so it stands' : 'run written back',
  );
  s.hooks.finished({ ...s.base, outcome, iteration, nextRunAtMs: written.nextRunAtMs, tokens: usage ? { used: usage.tokens, estimated: usage.estimated } : null });
  return outcome;
}

/**
 * The database, a connection, a lock or mana-llm failed, not the mission:
 * the claim goes back (with the plan, if one was made) and the run is
 * tried again after a backoff (the dispatcher re-arms it); after
 * MAX_ATTEMPTS claims the retry writes a failed iteration with the next
 * due time instead of asking the LLM.
 */
async function giveBack(s: RunScope, reason: string, message: string, planned: PendingPlan | null): Promise<RunOutcome> {
  const { deps, run: { dueMs, claim } } = s;
  deps.metrics.runRetries.inc({ reason });
  const given = await withRetries(s.signal, () => giveBackRun(deps.pool, { runId: claim.runId, workerId: deps.config.workerId, attempts: claim.attempts, error: `retry: ${message}`, plan: planned }));
  s.log.warn({ dueAt: new Date(dueMs).toISOString(), attempt: claim.attempts, reason, err: message, givenBack: given === true },
    given === true ? 'run failed outside the mission; claim given back, tried again after a backoff'
    : given === false ? 'run failed outside the mission; its claim was no longer ours (written or taken meanwhile)'
    : 'run failed outside the mission and the claim could not be given back; it ends with this daemon\'s session or its lease');
  s.hooks.finished({ ...s.base, outcome: 'retry', error: message });
  return 'retry';
}

/**
 * The mission's content (or a bug it triggers) failed the run: the failed
 * iteration is written with the next due time, so a recurring mission runs
 * again. Only when even that write fails does the run end as failed with
 * nothing written.
 */
async function writeRunError(s: RunScope, message: string): Promise<RunOutcome> {
  const { deps, agent, log, iterationId, run: { sid, dueMs, startedAtMs, claim } } = s;
  const { config } = deps;
  const reason = `run-error: ${message}`.slice(0, 500);
  deps.metrics.missionErrors.inc({ reason: 'run-error' });
  log.error({ dueAt: new Date(dueMs).toISOString(), err: reason }, 'run failed; writing a failed iteration with the next due time');
  const iteration = failedIteration(iterationId, new Date(startedAtMs).toISOString(), new Date().toISOString(), 'run-error');
  const objective = plainText(claim.record, 'objective');
  try {
    const written = await writeBack(deps.db, {
      runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, sid, dueMs,
      userId: claim.userId, missionId: claim.missionId, iteration, nowMs: Date.now(),
      // the tokens the plan cost were charged as its answers arrived; the actor is the run's
      agent: agent ? { id: agent.id, nameAtClaim: agent.name, rationale: objective } : null,
      generation: config.webapp, objective, maxConsecutiveFailures: config.maxConsecutiveFailures, failureReason: 'run-error',
      nextRunAt: (record, nowMs) => nextRunOrNone(record, nowMs, config.timeZone),
    });
    if (written.outcome === 'written') {
      s.hooks.finished({ ...s.base, outcome: 'failed', error: reason, iteration, nextRunAtMs: written.nextRunAtMs });
      return 'failed';
    }
  } catch (writeError) {
    log.error({ err: coerceError(writeError).message }, 'the failed iteration could not be written either; the run ends as failed');
  }
  const ended = await withRetries(s.signal, () => finishRun(deps.pool, { runId: claim.runId, workerId: config.workerId, attempts: claim.attempts, status: 'failed', error: reason }));
  if (ended === null) log.error({ runId: claim.runId }, 'could not record the failed run; its claim ends with this daemon or its lease');
  s.hooks.finished({ ...s.base, outcome: 'failed', error: reason });
  return 'failed';
}

/** The charger, with each charge it makes kept for the run to await. */
function collect(charges: Promise<void>[], charge: (usage: RunUsage) => Promise<void>): (usage: RunUsage) => Promise<void> {
  return (usage) => {
    const p = charge(usage);
    charges.push(p);
    return p;
  };
}

/** Runs `fn` while the database is away (a few seconds), unless shutting down; null = it never succeeded. */
async function withRetries<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T | null> {
  for (let attempt = 1; attempt <= 6 && !signal.aborted; attempt++) {
    try {
      return await fn();
    } catch {
      await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { jitter: true })));
    }
  }
  return null;
}
