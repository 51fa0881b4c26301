// One planning pass for a claimed run: resolve inputs, build the prompt,
// ask mana-llm, parse the answer. Returns the iteration to write; never
// throws for a failure the user should see (those become a `failed`
// iteration with a German summary). No database writes here.

import type { webcrypto } from 'node:crypto';
import type { Db } from '../db/pool.js';
import { unwrapGrant, type UsableGrant } from '../grants/unwrap.js';
import type { Logger } from '../log.js';
import type { Mission } from '../mission/mission.js';
import type { Metrics } from '../metrics/metrics.js';
import { failedIteration, planIteration, type Iteration } from '../write-back/iteration.js';
import { LlmError, type LlmClient } from './llm-client.js';
import { parsePlan } from './parse-plan.js';
import { buildMessages } from './prompt.js';
import type { ResolverRegistry } from './resolvers/registry.js';
import { TOOL_NAMES, TOOLS } from './tools.js';

export interface PlanDeps {
  db: Db;
  llm: LlmClient;
  resolvers: ResolverRegistry;
  metrics: Metrics;
  log: Logger;
  /** The runner's RSA key for mission grants; null = grants disabled. */
  privateKey: webcrypto.CryptoKey | null;
}

export async function planMission(
  deps: PlanDeps,
  run: { userId: string; missionId: string; iterationId: string; startedAt: Date },
  mission: Mission,
  signal: AbortSignal,
): Promise<{ iteration: Iteration; failure: string | null }> {
  const log = deps.log.child({ userId: run.userId, missionId: run.missionId, iterationId: run.iterationId });
  const inputs = await resolveInputs(deps, run, mission, log);
  const messages = buildMessages(mission, inputs, TOOLS, run.startedAt);
  // Prompts and answers are user content, so debug level only; with
  // decrypted inputs not even that (the answer may quote them).
  const sensitive = inputs.some((i) => i.sensitive === true);
  if (sensitive) log.debug({ promptChars: messages.reduce((n, m) => n + m.content.length, 0), inputs: inputs.map((i) => `${i.module}/${i.table}/${i.id}`) }, 'prompt built (content not logged: decrypted inputs)');
  else log.debug({ prompt: messages }, 'prompt built');
  const started = run.startedAt.toISOString();
  let answer: string;
  try {
    answer = await deps.llm.complete(messages, signal);
  } catch (error) {
    const reason = error instanceof LlmError ? `llm-${error.reason}` : 'llm-unreachable';
    if (reason === 'llm-aborted') throw error;
    log.warn({ reason, err: (error as Error).message }, 'planner request failed after retries');
    return { iteration: failedIteration(run.iterationId, started, new Date().toISOString(), reason), failure: reason };
  }
  if (sensitive) log.debug({ answerChars: answer.length }, 'planner answered (content not logged: decrypted inputs)');
  else log.debug({ answer }, 'planner answered');
  const parsed = parsePlan(answer, TOOL_NAMES);
  if (!parsed.ok) {
    deps.metrics.parseFailures.inc();
    log.warn({ reason: parsed.reason }, 'planner answer rejected');
    return { iteration: failedIteration(run.iterationId, started, new Date().toISOString(), 'plan-unparseable'), failure: `plan-unparseable:${parsed.reason}` };
  }
  deps.metrics.plansProduced.inc();
  return { iteration: planIteration(run.iterationId, started, new Date().toISOString(), parsed.plan), failure: null };
}

/**
 * Unwraps the mission's grant only when it links encrypted inputs, resolves
 * every input, and drops the grant's key when done: it lives for this one
 * run and is never cached. A grant that cannot be used is counted and the
 * mission is planned with its plaintext inputs.
 */
async function resolveInputs(
  deps: PlanDeps,
  run: { userId: string; missionId: string; iterationId: string },
  mission: Mission,
  log: Logger,
) {
  let grant: UsableGrant | null = null;
  try {
    if (mission.grant !== undefined && mission.grant !== null && deps.resolvers.needsGrant(mission.inputs)) {
      const unwrapped = await unwrapGrant(deps.privateKey, mission.grant, { missionId: run.missionId, nowMs: Date.now() });
      if (unwrapped.ok) grant = unwrapped.grant;
      else {
        deps.metrics.grantSkips.inc({ reason: unwrapped.reason });
        log.warn({ reason: unwrapped.reason }, 'mission grant not usable; planning without encrypted inputs');
      }
    }
    return await deps.resolvers.resolveAll(
      { db: deps.db, userId: run.userId, missionId: run.missionId, iterationId: run.iterationId, log, metrics: deps.metrics, grant },
      mission.inputs,
    );
  } finally {
    grant = null;
  }
}
