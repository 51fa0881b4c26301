// Turns the model's answer into a plan, or rejects it as a whole
// (CONTRACT.md section 6) when its structure is broken: no JSON object, no
// steps array, a step that is not an object, has no tool name or no
// rationale. Tools and parameters are checked per step afterwards
// (check-plan.ts, validate-step.ts), so one unknown tool no longer costs
// the valid steps beside it (issue 19). Pure; never throws.

import * as v from 'valibot';
import { PLAN_LIMITS } from './plan-limits.js';

export interface PlannedStep {
  summary: string;
  toolName: string;
  params: Record<string, unknown>;
  rationale: string;
}

export interface Plan {
  summary: string;
  steps: PlannedStep[];
}

export type ParsedPlan = { ok: true; plan: Plan } | { ok: false; reason: string };

const MAX_STEPS = PLAN_LIMITS.stepsPerPlan;

/** The JSON object in a fenced ```json block, else the first balanced {...}. */
export function extractJsonObject(text: string): string | null {
  const fence = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(text);
  if (fence && fence[1]!.trim().startsWith('{')) return fence[1]!.trim();
  const start = text.indexOf('{');
  if (start < 0) return null;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    }
  }
  return null;
}

const StepSchema = v.object({
  summary: v.optional(v.string(), ''),
  toolName: v.string(),
  params: v.optional(v.unknown()),
  rationale: v.pipe(v.string(), v.trim(), v.minLength(1)),
});

export function parsePlan(answer: string): ParsedPlan {
  if (typeof answer !== 'string') return { ok: false, reason: 'no-json-object' };
  const json = extractJsonObject(answer);
  if (json === null) return { ok: false, reason: 'no-json-object' };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, reason: 'json-does-not-parse' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not-an-object' };
  const obj = value as Record<string, unknown>;
  if (!Array.isArray(obj['steps'])) return { ok: false, reason: 'steps-not-an-array' };
  if (obj['steps'].length > MAX_STEPS) return { ok: false, reason: 'too-many-steps' };
  const steps: PlannedStep[] = [];
  for (const raw of obj['steps']) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'step-not-an-object' };
    const toolName = (raw as Record<string, unknown>)['toolName'];
    if (typeof toolName !== 'string' || toolName.length === 0) return { ok: false, reason: 'tool-name-missing' };
    const r = v.safeParse(StepSchema, raw);
    if (!r.success) return { ok: false, reason: 'rationale-empty' };
    const params = r.output.params;
    steps.push({
      summary: r.output.summary.slice(0, 500),
      toolName,
      params: typeof params === 'object' && params !== null && !Array.isArray(params) ? (params as Record<string, unknown>) : {},
      rationale: r.output.rationale.slice(0, 1000),
    });
  }
  const summary = typeof obj['summary'] === 'string' ? obj['summary'].slice(0, 500) : '';
  return { ok: true, plan: { summary, steps } };
}
