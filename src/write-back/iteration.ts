// Builds the iteration the runner appends (CONTRACT.md section 5). Pure.
// The iteration id is derived from (user, mission, due time): even if a run
// were somehow written twice, the webapp would see one id for one run.

import { createHash } from 'node:crypto';
import type { Plan } from '../planner/parse-plan.js';

export function iterationIdFor(userId: string, missionId: string, dueMs: number): string {
  const h = createHash('sha256').update(`${userId}\u0000${missionId}\u0000${dueMs}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8: custom
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export interface Iteration {
  id: string;
  startedAt: string;
  finishedAt: string;
  plan: {
    id: string;
    summary: string;
    intent: { kind: 'toolCall'; toolName: string; params: Record<string, unknown> };
    status: 'planned';
  }[];
  summary: string;
  overallStatus: 'awaiting-review' | 'approved' | 'failed';
  source: 'server';
  /** the prompt, catalog and planner mode it was planned with (src/planner/prompt.ts); absent when no plan was asked for */
  promptVersion?: string;
}

export function planIteration(id: string, startedAt: string, finishedAt: string, plan: Plan, promptVersion?: string): Iteration {
  return {
    id,
    startedAt,
    finishedAt,
    plan: plan.steps.map((s, i) => ({
      id: `${id}-${i}`,
      summary: s.summary || s.rationale,
      intent: { kind: 'toolCall', toolName: s.toolName, params: s.params },
      status: 'planned',
    })),
    summary: plan.summary,
    overallStatus: plan.steps.length === 0 ? 'approved' : 'awaiting-review',
    source: 'server',
    ...(promptVersion ? { promptVersion } : {}),
  };
}

const FAILURE_SUMMARIES: Record<string, string> = {
  'llm-unreachable': 'Der Planer war nicht erreichbar; der nächste Durchlauf versucht es erneut.',
  'llm-timeout': 'Der Planer hat nicht rechtzeitig geantwortet; der nächste Durchlauf versucht es erneut.',
  'llm-rate-limited': 'Der Planer war überlastet; der nächste Durchlauf versucht es erneut.',
  'llm-server-error': 'Der Planer hatte einen Fehler; der nächste Durchlauf versucht es erneut.',
  'llm-bad-response': 'Der Planer hat eine unbrauchbare Antwort geliefert.',
  'llm-client-error': 'Die Anfrage an den Planer wurde abgelehnt.',
  'plan-unparseable': 'Der Planer hat keinen gültigen Plan geliefert.',
  'too-many-attempts': 'Die Planung ist mehrfach abgebrochen und wurde aufgegeben.',
};

export function failedIteration(id: string, startedAt: string, finishedAt: string, reason: string): Iteration {
  return {
    id,
    startedAt,
    finishedAt,
    plan: [],
    summary: FAILURE_SUMMARIES[reason] ?? 'Die Planung ist fehlgeschlagen.',
    overallStatus: 'failed',
    source: 'server',
  };
}
