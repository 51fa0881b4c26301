// Builds the iteration the runner appends (CONTRACT.md section 5). Pure.
// The iteration id is derived from (user, mission, due time): even if a run
// were somehow written twice, the webapp would see one id for one run.

import { hash } from 'node:crypto';
import type { Plan } from '../planner/parse-plan.js';

export function iterationIdFor(userId: string, missionId: string, dueMs: number): string {
  // one-shot hash (Node >= 20.12): about half of createHash's cost, once a run (issue 30)
  const h = hash('sha256', `${userId}\u0000${missionId}\u0000${dueMs}`, 'buffer');
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

/** What went wrong, one sentence each; a failure the next due time may not meet gets RETRY_CLAUSE in its iteration. */
const FAILURE_CAUSES: Record<string, { cause: string; retried: boolean }> = {
  'llm-unreachable': { cause: 'Der Planer war nicht erreichbar', retried: true },
  'llm-timeout': { cause: 'Der Planer hat nicht rechtzeitig geantwortet', retried: true },
  'llm-rate-limited': { cause: 'Der Planer war überlastet', retried: true },
  'llm-server-error': { cause: 'Der Planer hatte einen Fehler', retried: true },
  'llm-bad-response': { cause: 'Der Planer hat eine unbrauchbare Antwort geliefert', retried: false },
  'llm-client-error': { cause: 'Die Anfrage an den Planer wurde abgelehnt', retried: false },
  'plan-unparseable': { cause: 'Der Planer hat keinen gültigen Plan geliefert', retried: false },
  'too-many-attempts': { cause: 'Die Planung ist mehrfach abgebrochen und wurde aufgegeben', retried: false },
};
const RETRY_CLAUSE = '; der nächste Durchlauf versucht es erneut.';

/** The failure's cause as one sentence, without a promise of what comes next (the parked iteration's "last error"). */
export function failureCause(reason: string): string {
  return `${FAILURE_CAUSES[reason]?.cause ?? 'Die Planung ist fehlgeschlagen'}.`;
}

export function failedIteration(id: string, startedAt: string, finishedAt: string, reason: string): Iteration {
  return {
    id,
    startedAt,
    finishedAt,
    plan: [],
    summary: FAILURE_CAUSES[reason]?.retried ? `${FAILURE_CAUSES[reason]!.cause}${RETRY_CLAUSE}` : failureCause(reason),
    overallStatus: 'failed',
    source: 'server',
  };
}
