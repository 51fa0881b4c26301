// One planning pass for a claimed run: resolve inputs, build the prompt,
// ask mana-llm, parse the answer. Returns the iteration to write and the
// tokens the answer cost; never throws for a failure the user should see
// (those become a `failed` iteration with a German summary). No database
// writes here.
//
// Under an agent, the tools its policy denies are neither offered nor
// accepted, and the prompt gains the agent's section (prompt.ts); the
// agent's encrypted fields never get this far (agent/agent.ts).

import type { webcrypto } from 'node:crypto';
import type { Db } from '../db/pool.js';
import { unwrapGrant, type UsableGrant } from '../grants/unwrap.js';
import type { Logger } from '../log.js';
import { allowedTools, type Agent } from '../agent/agent.js';
import type { Mission } from '../mission/mission.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Span } from '@opentelemetry/api';
import { inSpan, type Tracing } from '../tracing/tracing.js';
import { failedIteration, planIteration, type Iteration } from '../write-back/iteration.js';
import { LlmError, type LlmClient } from './llm-client.js';
import { parsePlan } from './parse-plan.js';
import { buildMessages, type ChatMessage } from './prompt.js';
import type { ResolverRegistry } from './resolvers/registry.js';
import { TOOLS } from './tools.js';

/** Tokens charged to a run; `estimated` when the answer did not report them. */
export interface RunUsage {
  tokens: number;
  estimated: boolean;
}

/**
 * The estimate for an answer without usage.total_tokens: about four
 * characters per token over prompt and answer, the usual rule of thumb
 * for the models behind mana-llm; marked as estimated wherever it is kept.
 */
export function estimateTokens(messages: readonly ChatMessage[], answer: string): number {
  const chars = messages.reduce((n, m) => n + m.content.length, 0) + answer.length;
  return Math.ceil(chars / 4);
}

export interface PlanDeps {
  db: Db;
  llm: LlmClient;
  resolvers: ResolverRegistry;
  metrics: Metrics;
  log: Logger;
  /** The runner's RSA key for mission grants; null = grants disabled. */
  privateKey: webcrypto.CryptoKey | null;
  tracing: Tracing;
  /** the run's span: input resolution and the LLM request are its children */
  span: Span;
}

export async function planMission(
  deps: PlanDeps,
  run: { userId: string; missionId: string; iterationId: string; startedAt: Date },
  mission: Mission,
  agent: Agent | null,
  signal: AbortSignal,
): Promise<{ iteration: Iteration; failure: string | null; usage: RunUsage | null }> {
  const log = deps.log.child({ userId: run.userId, missionId: run.missionId, iterationId: run.iterationId });
  const inputs = await inSpan(deps.tracing.tracer, deps.span, 'mission.resolve_inputs', { 'mission.inputs': mission.inputs.length }, async (s) => {
    const resolved = await resolveInputs(deps, run, mission, log);
    s.setAttribute('mission.inputs_resolved', resolved.length);
    return resolved;
  });
  const { allowed, denied } = agent ? allowedTools(agent.policy, TOOLS) : { allowed: [...TOOLS], denied: [] };
  if (denied.length) log.debug({ agentId: agent?.id, denied: denied.map((t) => t.name) }, 'tools denied by the agent policy are not offered');
  const messages = buildMessages(mission, inputs, allowed, run.startedAt, agent);
  // Prompts and answers are user content, so debug level only; with
  // decrypted inputs not even that (the answer may quote them).
  const sensitive = inputs.some((i) => i.sensitive === true);
  if (sensitive) log.debug({ promptChars: messages.reduce((n, m) => n + m.content.length, 0), inputs: inputs.map((i) => `${i.module}/${i.table}/${i.id}`) }, 'prompt built (content not logged: decrypted inputs)');
  else log.debug({ prompt: messages }, 'prompt built');
  const started = run.startedAt.toISOString();
  let answer: string;
  let usage: RunUsage;
  try {
    // the LLM request's span; mana-llm continues the trace from its traceparent
    const reply = await inSpan(deps.tracing.tracer, deps.span, 'llm.request', { 'llm.model': deps.llm.model }, async (s) => {
      const headers: Record<string, string> = {};
      deps.tracing.inject(s, headers);
      const r = await deps.llm.complete(messages, signal, headers);
      if (r.totalTokens !== null) s.setAttribute('llm.total_tokens', r.totalTokens);
      return r;
    });
    answer = reply.content;
    usage = reply.totalTokens !== null ? { tokens: reply.totalTokens, estimated: false } : { tokens: estimateTokens(messages, answer), estimated: true };
  } catch (error) {
    const reason = error instanceof LlmError ? `llm-${error.reason}` : 'llm-unreachable';
    if (reason === 'llm-aborted') throw error;
    log.warn({ reason, err: (error as Error).message }, 'planner request failed after retries');
    return { iteration: failedIteration(run.iterationId, started, new Date().toISOString(), reason), failure: reason, usage: null };
  }
  if (sensitive) log.debug({ answerChars: answer.length }, 'planner answered (content not logged: decrypted inputs)');
  else log.debug({ answer }, 'planner answered');
  // Every answer costs tokens, a rejected one too: usage is charged either way.
  const parsed = parsePlan(answer, new Set(allowed.map((t) => t.name)), new Set(denied.map((t) => t.name)));
  if (!parsed.ok) {
    deps.metrics.parseFailures.inc();
    log.warn({ reason: parsed.reason }, 'planner answer rejected');
    return { iteration: failedIteration(run.iterationId, started, new Date().toISOString(), 'plan-unparseable'), failure: `plan-unparseable:${parsed.reason}`, usage };
  }
  deps.metrics.plansProduced.inc();
  return { iteration: planIteration(run.iterationId, started, new Date().toISOString(), parsed.plan), failure: null, usage };
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
