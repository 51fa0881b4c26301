// A plan kept with its claim (its write-back failed outside the mission) is
// written by a retry minutes later, maybe on another daemon; by then the
// agent's policy may deny a tool it uses (issue 27, found by reading). Its
// steps are checked again against the agent's policy as the retry's claim
// read it, with the same validator as a fresh plan: a step that no longer
// passes is dropped (and counted), never written as an action. Pure.

import { allowedTools, type Agent } from '../agent/agent.js';
import type { CatalogTool } from './catalog/index.js';
import { offerOf } from './check-plan.js';
import { validateStep } from './validate-step.js';
import type { Iteration } from '../write-back/iteration.js';

export function recheckKeptPlan(iteration: Iteration, agent: Agent | null, catalog: readonly CatalogTool[]): { iteration: Iteration; dropped: number } {
  if (iteration.plan.length === 0) return { iteration, dropped: 0 };
  const { allowed, denied } = agent ? allowedTools(agent.policy, catalog) : { allowed: [...catalog], denied: [] };
  const offer = offerOf(allowed, denied);
  const kept = iteration.plan.filter((s) => validateStep(offer.offered, offer.denied, s.intent.toolName, s.intent.params).ok);
  const dropped = iteration.plan.length - kept.length;
  if (dropped === 0) return { iteration, dropped };
  const note = ` (${dropped} Schritt${dropped === 1 ? '' : 'e'} nicht geschrieben: inzwischen vom Agenten nicht mehr erlaubt)`;
  return {
    iteration: {
      ...iteration,
      plan: kept,
      summary: `${iteration.summary}${note}`.trim(),
      overallStatus: kept.length === 0 && iteration.overallStatus === 'awaiting-review' ? 'approved' : iteration.overallStatus,
    },
    dropped,
  };
}
