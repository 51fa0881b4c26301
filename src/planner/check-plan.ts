// Checks every step of a parsed plan with the one validator
// (validate-step.ts): the valid steps, with their parameters as the
// executor will see them, once each; the invalid ones with their problems,
// for the repair round and for the iteration's summary. Pure.

import type { CatalogTool } from './catalog/index.js';
import type { Plan, PlannedStep } from './parse-plan.js';
import { stepKey, validateStep, type StepProblem } from './validate-step.js';

export interface InvalidStep {
  /** 1-based, as the repair prompt names it */
  position: number;
  toolName: string;
  problems: StepProblem[];
}

export interface CheckedPlan {
  summary: string;
  valid: PlannedStep[];
  invalid: InvalidStep[];
  /** identical steps left out after their first */
  duplicates: number;
  /** parameters no executor reads, dropped from valid steps */
  droppedParams: number;
}

export interface ToolOffer {
  offered: ReadonlyMap<string, CatalogTool>;
  denied: ReadonlySet<string>;
  /** the run's web sources when it researched (issue 31): a step's `url` must be one of them */
  sourceUrls?: ReadonlySet<string> | null;
}

export function offerOf(allowed: readonly CatalogTool[], denied: readonly CatalogTool[], sourceUrls: ReadonlySet<string> | null = null): ToolOffer {
  return { offered: new Map(allowed.map((t) => [t.name, t])), denied: new Set(denied.map((t) => t.name)), sourceUrls };
}

export function checkPlan(plan: Plan, offer: ToolOffer): CheckedPlan {
  const valid: PlannedStep[] = [];
  const invalid: InvalidStep[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let droppedParams = 0;
  plan.steps.forEach((s, i) => {
    const r = validateStep(offer.offered, offer.denied, s.toolName, s.params, offer.sourceUrls ?? null);
    droppedParams += r.droppedParams.length;
    if (!r.ok) {
      invalid.push({ position: i + 1, toolName: s.toolName, problems: r.problems });
      return;
    }
    const key = stepKey(s.toolName, r.params);
    if (seen.has(key)) {
      duplicates += 1;
      return;
    }
    seen.add(key);
    valid.push({ ...s, params: r.params });
  });
  return { summary: plan.summary, valid, invalid, duplicates, droppedParams };
}

/** One line per problem: `Schritt 2, create_event: Pflichtparameter startTime fehlt`. */
export function describeProblems(invalid: readonly InvalidStep[]): string[] {
  return invalid.flatMap((s) => s.problems.map((p) => `Schritt ${s.position}, ${s.toolName}: ${p.message}`));
}

/** The repair request: what was wrong, step by step, and the same format again. */
export function repairRequest(invalid: readonly InvalidStep[]): string {
  return [
    'Dein Plan hat Schritte, die die App so nicht ausführen kann:',
    ...describeProblems(invalid).map((l) => `- ${l}`),
    'Antworte noch einmal mit dem vollständigen, korrigierten Plan im selben JSON-Format (alle Schritte, auch die gültigen). Verwende nur die aufgeführten Werkzeuge und Parameter; lass einen Schritt weg, wenn du ihn nicht korrekt angeben kannst.',
  ].join('\n');
}

/** What the user sees about steps left out: appended to the iteration's summary. */
export function leftOutNote(invalid: readonly InvalidStep[]): string {
  if (invalid.length === 0) return '';
  const names = [...new Set(invalid.map((s) => s.toolName))].join(', ');
  return ` (${invalid.length} ${invalid.length === 1 ? 'Vorschlag wurde' : 'Vorschläge wurden'} weggelassen, weil die App ${invalid.length === 1 ? 'ihn' : 'sie'} nicht ausführen könnte: ${names})`;
}
