// One planning pass for a claimed run: resolve inputs, build the prompt,
// ask mana-llm, parse the answer. Returns the iteration to write and the
// tokens the answer cost; never throws for a failure the user should see
// (those become a `failed` iteration with a German summary). No database
// writes here.
//
// Under an agent, the tools its policy denies are neither offered nor
// accepted, and the prompt gains the agent's section (prompt.ts); the
// agent's encrypted fields never get this far (agent/agent.ts).

import type { Memberships } from '../auth/memberships.js';
import type { Db } from '../db/pool.js';
import type { UsableGrant } from '../grants/unwrap.js';
import { openGrant } from '../grants/open-grant.js';
import type { RunnerKeys } from '../grants/runner-keys.js';
import type { Logger } from '../log.js';
import { allowedTools, type Agent } from '../agent/agent.js';
import type { Mission } from '../mission/mission.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Span } from '@opentelemetry/api';
import { inSpan, type Tracing } from '../tracing/tracing.js';
import { failedIteration, planIteration, type Iteration } from '../write-back/iteration.js';
import { MAX_TOOL_ROUNDS, PLAN_LIMITS } from './plan-limits.js';
import { LlmError, type LlmAnswer, type LlmClient } from './llm-client.js';
import { parsePlan, type Plan } from './parse-plan.js';
import { checkPlan, leftOutNote, offerOf, repairRequest, type CheckedPlan, type ToolOffer } from './check-plan.js';
import type { CatalogTool } from './catalog/index.js';
import { buildMessages, promptVersion, type ChatMessage, type PlannerMode } from './prompt.js';
import { functionSpecs, STEP_SENTENCE_PARAM } from './tool-specs.js';
import { stepKey, validateStep } from './validate-step.js';
import type { ResolverRegistry } from './resolvers/registry.js';
import { coerceError } from '../coerce-error.js';
import { researchForRun, type ResearchBlock, type ResearchDeps } from '../research/research.js';
import type { ResearchRequest } from '../research/research-request.js';

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
  const chars = messages.reduce((n, m) => n + (m.content?.length ?? 0) + (m.tool_calls ? JSON.stringify(m.tool_calls).length : 0), 0) + answer.length;
  return Math.ceil(chars / 4);
}

export interface PlanDeps {
  db: Db;
  llm: LlmClient;
  resolvers: ResolverRegistry;
  metrics: Metrics;
  /** the run's logger, bound to userId, missionId and iterationId */
  log: Logger;
  /** The runner's RSA keys for mission grants (current and previous; none = grants disabled). */
  runnerKeys: RunnerKeys;
  tracing: Tracing;
  /** the run's span: input resolution and the LLM request are its children */
  span: Span;
  /** the tools of the configured webapp generation (MANA_AI_WEBAPP) */
  catalog: readonly CatalogTool[];
  /** MANA_AI_PLANNER_MODE */
  mode?: PlannerMode;
  /** the owners' shared spaces (mana-auth); null = personal inputs only */
  memberships?: Memberships | null;
  /** the run's research (issue 31): what the mission asked, and how to fetch it; null = none */
  research?: { request: ResearchRequest; deps: ResearchDeps; dueMs: number } | { block: ResearchBlock } | null;
  /**
   * Charges one answer's tokens the moment it arrives (every path: a plan,
   * a rejected answer, a throw later, a retry, a failed write-back), once
   * per answer; never throws (src/run/charge.ts). Submitted at once and not
   * awaited here: the caller awaits it before the run ends.
   */
  onAnswer?: (usage: RunUsage) => Promise<void>;
}

/**
 * mana-llm could not answer (after the run's own attempts): unreachable, a
 * timeout, 429 or 5xx. Not the mission's failure: the planner throws it
 * and the run is given back and tried again later, never counted towards
 * the park (issue 27, item 4).
 */
const OUTAGE_REASONS: ReadonlySet<string> = new Set(['unreachable', 'timeout', 'rate-limited', 'server-error']);
export const isLlmOutage = (error: unknown): error is LlmError => error instanceof LlmError && OUTAGE_REASONS.has(error.reason);

/** Characters of a conversation as it would be sent (content and tool-call arguments). */
function messagesChars(messages: readonly ChatMessage[]): number {
  let n = 0;
  for (const m of messages) {
    n += typeof m.content === 'string' ? m.content.length : 0;
    const calls = (m as { tool_calls?: { function?: { arguments?: unknown } }[] }).tool_calls;
    if (Array.isArray(calls)) for (const c of calls) n += typeof c?.function?.arguments === 'string' ? c.function.arguments.length : 0;
  }
  return n;
}

/** Models already reported as unable to call tools: logged once per model. */
const toolRefusalsLogged = new Set<string>();

export async function planMission(
  deps: PlanDeps,
  run: { userId: string; missionId: string; iterationId: string; startedAt: Date },
  mission: Mission,
  agent: Agent | null,
  signal: AbortSignal,
): Promise<{ iteration: Iteration; failure: string | null; usage: RunUsage | null }> {
  // deps.log is the run's logger, already bound to userId, missionId and iterationId
  // (src/run/execute-run.ts): a child here would write each key twice
  const log = deps.log;
  if (mission.inputsLeftOut > 0) log.warn({ inputs: mission.inputs.length, leftOut: mission.inputsLeftOut }, 'mission links more inputs than are read (PLAN_LIMITS.inputsPerMission); the rest are left out');
  const inputs = await inSpan(deps.tracing.tracer, deps.span, 'mission.resolve_inputs', { 'mission.inputs': mission.inputs.length }, async (s) => {
    const resolved = await resolveInputs(deps, run, mission, log);
    s.setAttribute('mission.inputs_resolved', resolved.length);
    return resolved;
  });
  // research the mission asked for (issue 31): its sources, or a block that says there are none
  const r = deps.research ?? null;
  const research = r === null ? null
    : 'block' in r ? r.block
    : r.request.kind === 'none' ? null
    : await inSpan(deps.tracing.tracer, deps.span, 'mission.research', { 'research.kind': r.request.kind }, () =>
      researchForRun(r.deps, { userId: run.userId, missionId: run.missionId, dueMs: r.dueMs, nowMs: Date.now() },
        r.request as Extract<ResearchRequest, { kind: 'news' | 'deep' }>, signal));
  const { allowed, denied } = agent ? allowedTools(agent.policy, deps.catalog) : { allowed: [...deps.catalog], denied: [] };
  if (denied.length) log.debug({ agentId: agent?.id, denied: denied.map((t) => t.name) }, 'tools denied by the agent policy are not offered');
  // a run that researched may link only its sources
  const offer = offerOf(allowed, denied, research ? new Set(research.sources.map((x) => x.url)) : null);
  const sensitiveInputs = inputs.some((i) => i.sensitive === true);
  if ((deps.mode ?? 'text') === 'tools') {
    try {
      return withSourceCount(await planWithTools(deps, run, buildMessages(mission, inputs, allowed, run.startedAt, agent, 'tools', research), allowed, offer, sensitiveInputs, log, signal), research);
    } catch (error) {
      if (!(error instanceof LlmError && error.reason === 'capability')) throw error;
      // A model that cannot call tools: this run plans in text mode at once.
      deps.metrics.plannerFallbacks.inc({ reason: 'capability' });
      if (!toolRefusalsLogged.has(deps.llm.model)) {
        toolRefusalsLogged.add(deps.llm.model);
        log.warn({ model: deps.llm.model, err: error.message }, 'the model cannot call tools; planning in text mode (logged once per model)');
      }
    }
  }
  const messages = buildMessages(mission, inputs, allowed, run.startedAt, agent, 'text', research);
  // Prompts and answers are user content, so debug level only; with
  // decrypted inputs not even that (the answer may quote them).
  const sensitive = sensitiveInputs;
  if (sensitive) log.debug({ promptChars: messages.reduce((n, m) => n + (m.content?.length ?? 0), 0), inputs: inputs.map((i) => `${i.module}/${i.table}/${i.id}`) }, 'prompt built (content not logged: decrypted inputs)');
  else log.debug({ prompt: messages }, 'prompt built');
  const started = run.startedAt.toISOString();
  const failed = (reason: string, usage: RunUsage | null, failure = reason) =>
    ({ iteration: failedIteration(run.iterationId, started, new Date().toISOString(), reason), failure, usage });

  let first: { answer: string; usage: RunUsage };
  try {
    first = await ask(deps, messages, signal, sensitive, log);
  } catch (error) {
    const reason = error instanceof LlmError ? `llm-${error.reason}` : 'llm-unreachable';
    if (reason === 'llm-aborted' || isLlmOutage(error)) throw error;
    log.warn({ reason, err: coerceError(error).message }, 'planner request failed after retries');
    return failed(reason, null);
  }
  // Every answer costs tokens, a rejected one too: usage is charged either way.
  let usage = first.usage;
  const parsed = parsePlan(first.answer);
  if (!parsed.ok) {
    deps.metrics.parseFailures.inc();
    log.warn({ reason: parsed.reason }, 'planner answer rejected');
    return failed('plan-unparseable', usage, `plan-unparseable:${parsed.reason}`);
  }
  let checked = check(deps, parsed.plan, offer);
  if (checked.invalid.length > 0) {
    // One repair round in the same run: the model is told what is wrong,
    // step by step, and its corrected answer is kept if it parses.
    log.info({ invalid: checked.invalid.map((s) => ({ step: s.position, tool: s.toolName, problems: s.problems.map((p) => p.reason) })) }, 'plan has steps the webapp cannot execute; asking the model to correct them');
    deps.metrics.planRepairs.inc({ outcome: 'asked' });
    const repairMessages: ChatMessage[] = [...messages, { role: 'assistant', content: first.answer }, { role: 'user', content: repairRequest(checked.invalid) }];
    try {
      const second = await ask(deps, repairMessages, signal, sensitive, log);
      usage = { tokens: usage.tokens + second.usage.tokens, estimated: usage.estimated || second.usage.estimated };
      const reparsed = parsePlan(second.answer);
      if (reparsed.ok) {
        checked = check(deps, reparsed.plan, offer);
        deps.metrics.planRepairs.inc({ outcome: checked.invalid.length ? 'still-invalid' : 'corrected' });
      } else {
        deps.metrics.planRepairs.inc({ outcome: 'unparseable' });
        log.warn({ reason: reparsed.reason }, 'the corrected answer does not parse; keeping the valid steps of the first');
      }
    } catch (error) {
      if (error instanceof LlmError && error.reason === 'aborted') throw error;
      deps.metrics.planRepairs.inc({ outcome: 'request-failed' });
      log.warn({ err: coerceError(error).message }, 'the repair request failed; keeping the valid steps of the first answer');
    }
    // What is still invalid is left out, and counted: never written as an action.
    for (const s of checked.invalid) for (const p of s.problems) deps.metrics.planStepsRejected.inc({ reason: p.reason });
  }
  deps.metrics.plansProduced.inc();
  const plan: Plan = { summary: `${checked.summary}${leftOutNote(checked.invalid)}`.trim(), steps: checked.valid };
  return withSourceCount({ iteration: planIteration(run.iterationId, started, new Date().toISOString(), plan, promptVersion(deps.catalog, 'text')), failure: null, usage }, research);
}

/** The sources of the run's research a plan's steps link to (issue 31: the summary names how many the plan used). */
export function sourcesUsed(steps: readonly { intent: { params: Record<string, unknown> } }[], sources: readonly { url: string }[]): number {
  const urls = new Set(sources.map((x) => x.url));
  const used = new Set<string>();
  for (const st of steps) for (const v of Object.values(st.intent.params)) if (typeof v === 'string' && urls.has(v)) used.add(v);
  return used.size;
}

function withSourceCount<T extends { iteration: Iteration; failure: string | null }>(r: T, research: ResearchBlock | null): T {
  // not configured here (`skipped`): the prompt says there are no sources; the summary says nothing
  if (!research || research.outcome === 'skipped' || r.failure || r.iteration.overallStatus === 'failed') return r;
  const note = research.sources.length
    ? ` (Web-Recherche: ${sourcesUsed(r.iteration.plan, research.sources)} von ${research.sources.length} Quellen genutzt)`
    : ' (Web-Recherche: keine echten Quellen)';
  return { ...r, iteration: { ...r.iteration, summary: `${r.iteration.summary}${note}`.slice(0, 600) } };
}

/** One request to mana-llm under the run's span; the tokens it cost, reported or estimated. */
async function ask(deps: PlanDeps, messages: ChatMessage[], signal: AbortSignal, sensitive: boolean, log: Logger, tools?: unknown[]): Promise<{ answer: string; usage: RunUsage; reply: LlmAnswer }> {
  // the LLM request's span; mana-llm continues the trace from its traceparent
  const reply = await inSpan(deps.tracing.tracer, deps.span, 'llm.request', { 'llm.model': deps.llm.model }, async (s) => {
    const headers: Record<string, string> = {};
    deps.tracing.inject(s, headers);
    const r = await deps.llm.complete(messages, signal, headers, tools ? { tools } : undefined);
    if (r.totalTokens !== null) s.setAttribute('llm.total_tokens', r.totalTokens);
    return r;
  });
  const answer = reply.content;
  const estimate = () => estimateTokens(messages, answer + JSON.stringify(reply.toolCalls));
  const usage: RunUsage = reply.totalTokens !== null ? { tokens: reply.totalTokens, estimated: false } : { tokens: estimate(), estimated: true };
  // Paid for where it arrives: nothing after this line can skip the charge.
  // Submitted, not awaited: it goes with the run's write-back in one
  // statement (src/db/sql/run-writes.ts); the run awaits it before it ends.
  void deps.onAnswer?.(usage);
  if (sensitive) log.debug({ answerChars: answer.length, toolCalls: reply.toolCalls.length }, 'planner answered (content not logged: decrypted inputs)');
  else log.debug({ answer, toolCalls: reply.toolCalls.map((c) => c.name) }, 'planner answered');
  return { answer, reply, usage };
}

/**
 * Native tool calls (CONTRACT.md section 11), as upstream's HEAD runner
 * makes them, but every call checked by the same validator: an invalid,
 * unknown or denied call is answered `{success:false, message}` naming the
 * problem, so the model corrects itself; a valid one `{success:true}`. At
 * most MAX_TOOL_ROUNDS rounds; the plan is the valid calls in order, each
 * once; its summary is the final answer's text; tokens are summed over the
 * rounds and charged as one run.
 */
async function planWithTools(
  deps: PlanDeps,
  run: { iterationId: string; startedAt: Date },
  first: ChatMessage[],
  allowed: readonly CatalogTool[],
  offer: ToolOffer,
  sensitive: boolean,
  log: Logger,
  signal: AbortSignal,
): Promise<{ iteration: Iteration; failure: string | null; usage: RunUsage | null }> {
  const started = run.startedAt.toISOString();
  const specs = functionSpecs(allowed);
  const messages: ChatMessage[] = [...first];
  const steps: Plan['steps'] = [];
  const seen = new Set<string>();
  let usage: RunUsage | null = null;
  let summary = '';
  let rejected = 0;
  let calls = 0;
  let limited: string | null = null;
  for (let round = 1; round <= MAX_TOOL_ROUNDS && limited === null; round++) {
    // the conversation grows each round: one that would send more than the bound is not sent
    if (round > 1 && messagesChars(messages) > PLAN_LIMITS.requestChars) {
      limited = 'request-size';
      break;
    }
    let r: Awaited<ReturnType<typeof ask>>;
    try {
      r = await ask(deps, messages, signal, sensitive, log, specs);
    } catch (error) {
      if (error instanceof LlmError && (error.reason === 'capability' || error.reason === 'aborted')) throw error;
      const reason = error instanceof LlmError ? `llm-${error.reason}` : 'llm-unreachable';
      log.warn({ reason, round, err: coerceError(error).message }, 'planner request failed after retries');
      if (steps.length === 0 && isLlmOutage(error)) throw error;
      if (steps.length === 0) return { iteration: failedIteration(run.iterationId, started, new Date().toISOString(), reason), failure: reason, usage };
      break; // keep what the earlier rounds planned
    }
    usage = usage ? { tokens: usage.tokens + r.usage.tokens, estimated: usage.estimated || r.usage.estimated } : r.usage;
    if (r.reply.toolCalls.length === 0) {
      summary = r.answer;
      break;
    }
    messages.push({ ...(r.reply.message ?? {}), role: 'assistant', content: r.reply.message?.['content'] === undefined ? null : (r.reply.message['content'] as string | null) } as ChatMessage);
    for (const [i, call] of r.reply.toolCalls.entries()) {
      calls += 1;
      // PLAN_LIMITS: calls beyond a round's, the run's or the plan's bound are answered as refused, and the rounds stop
      const over = i >= PLAN_LIMITS.callsPerRound ? 'calls-per-round' : calls > PLAN_LIMITS.callsPerRun ? 'calls-per-run' : steps.length >= PLAN_LIMITS.stepsPerPlan ? 'steps-per-plan' : null;
      if (over) {
        limited ??= over;
        deps.metrics.planStepsRejected.inc({ reason: 'too-many' });
        messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify({ success: false, message: `Abgelehnt: höchstens ${PLAN_LIMITS.stepsPerPlan} Schritte im Plan und ${PLAN_LIMITS.callsPerRound} Aufrufe je Runde` }) });
        continue;
      }
      let args: unknown;
      try {
        args = JSON.parse(call.arguments);
      } catch {
        args = undefined;
      }
      let answer: { success: boolean; message: string };
      if (typeof args !== 'object' || args === null || Array.isArray(args)) {
        answer = { success: false, message: 'Die Argumente sind kein JSON-Objekt' };
        deps.metrics.planStepsRejected.inc({ reason: 'wrong-type' });
        rejected += 1;
      } else {
        const { [STEP_SENTENCE_PARAM]: sentence, ...params } = args as Record<string, unknown>;
        const checked = validateStep(offer.offered, offer.denied, call.name, params, offer.sourceUrls ?? null);
        if (checked.droppedParams.length) deps.metrics.planStepsRejected.inc({ reason: 'unknown-param' }, checked.droppedParams.length);
        if (!checked.ok) {
          for (const p of checked.problems) deps.metrics.planStepsRejected.inc({ reason: p.reason });
          answer = { success: false, message: checked.problems.map((p) => p.message).join('; ') };
          rejected += 1;
        } else {
          const key = stepKey(call.name, checked.params);
          if (seen.has(key)) {
            deps.metrics.planStepsRejected.inc({ reason: 'duplicate' });
            answer = { success: true, message: 'Dieser Schritt steht schon im Plan.' };
          } else {
            seen.add(key);
            const tool = offer.offered.get(call.name)!;
            const text = typeof sentence === 'string' && sentence.trim() ? sentence.trim().slice(0, 500) : tool.description;
            steps.push({ summary: text, toolName: call.name, params: checked.params, rationale: text });
            answer = { success: true, message: 'Im Plan.' };
          }
        }
      }
      messages.push({ role: 'tool', tool_call_id: call.id, content: JSON.stringify(answer) });
    }
  }
  if (rejected) log.info({ rejected, steps: steps.length }, 'tool calls the webapp could not execute were refused and answered with the problem');
  if (limited) log.warn({ limit: limited, calls, steps: steps.length }, 'the model went past a plan limit; the rounds stopped (src/planner/plan-limits.ts)');
  deps.metrics.plansProduced.inc();
  const plan: Plan = { summary: summary.trim().slice(0, 500), steps };
  return { iteration: planIteration(run.iterationId, started, new Date().toISOString(), plan, promptVersion(deps.catalog, 'tools')), failure: null, usage };
}

/** Checks a parsed plan and counts what the checker dropped without asking (duplicates, unknown parameters). */
function check(deps: PlanDeps, plan: Plan, offer: ToolOffer): CheckedPlan {
  const c = checkPlan(plan, offer);
  if (c.duplicates) deps.metrics.planStepsRejected.inc({ reason: 'duplicate' }, c.duplicates);
  if (c.droppedParams) deps.metrics.planStepsRejected.inc({ reason: 'unknown-param' }, c.droppedParams);
  return c;
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
      grant = await openGrant({ db: deps.db, runnerKeys: deps.runnerKeys, metrics: deps.metrics, log }, run, mission.grant);
    }
    return await deps.resolvers.resolveAll(
      {
        db: deps.db, userId: run.userId, missionId: run.missionId, iterationId: run.iterationId, log, metrics: deps.metrics, grant,
        ...(deps.memberships ? { spaces: () => deps.memberships!.of(run.userId), membersOf: (u: string) => deps.memberships!.of(u) } : {}),
      },
      mission.inputs,
    );
  } finally {
    grant = null;
  }
}
