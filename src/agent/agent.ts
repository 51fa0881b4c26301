// An Agent record (CONTRACT.md section 10) as the planner needs it: who it
// is, what it is told, and which tools its policy lets it propose. Pure.
//
// It never hands out an encrypted value: `systemPrompt` and `memory` that
// start with `enc:<n>:` (any version) are dropped here, so no caller can put them in a
// prompt or a log line by mistake. The gate fields (state, concurrency,
// budget) are derived in SQL (sql/functions/snapshot-store.sql, agent_gate_of), where the claim
// checks them; they are not read here.

import type { CatalogTool } from '../planner/catalog/index.js';
import { isCiphertext } from '../grants/ciphertext.js';

export type ToolDecision = 'auto' | 'propose' | 'deny';

export interface AgentPolicy {
  tools: Readonly<Record<string, unknown>>;
  defaultsByModule: Readonly<Record<string, unknown>>;
  defaultForAi: unknown;
}

export interface Agent {
  id: string;
  name: string;
  role: string;
  /** plaintext only; null when absent or encrypted */
  systemPrompt: string | null;
  /** plaintext only; null when absent or encrypted */
  memory: string | null;
  policy: AgentPolicy;
  /** true when systemPrompt or memory was withheld because it is encrypted */
  withheldEncrypted: boolean;
}


const str = (x: unknown) => (typeof x === 'string' ? x : '');
const obj = (x: unknown): Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : {};

function plaintext(x: unknown): string | null {
  if (typeof x !== 'string' || x.trim() === '' || isCiphertext(x)) return null;
  return x;
}

export function readAgent(agentId: string, record: Record<string, unknown>): Agent {
  const policy = obj(record['policy']);
  return {
    id: agentId,
    name: str(record['name']),
    role: str(record['role']),
    systemPrompt: plaintext(record['systemPrompt']),
    memory: plaintext(record['memory']),
    policy: { tools: obj(policy['tools']), defaultsByModule: obj(policy['defaultsByModule']), defaultForAi: policy['defaultForAi'] },
    withheldEncrypted: isCiphertext(record['systemPrompt']) || isCiphertext(record['memory']),
  };
}

/**
 * The contract's lookup: `policy.tools[name] ?? policy.defaultsByModule[module] ?? policy.defaultForAi`.
 * `??` skips only null and undefined, as in the webapp; a value that is not
 * one of the three decisions is returned as it is and counts as "not deny".
 */
export function toolDecision(policy: AgentPolicy, tool: Pick<CatalogTool, 'name' | 'module'>): unknown {
  return policy.tools[tool.name] ?? policy.defaultsByModule[tool.module] ?? policy.defaultForAi;
}

/** The tools offered to the planner: every tool whose decision is not `deny`. */
export function allowedTools<T extends Pick<CatalogTool, 'name' | 'module'>>(policy: AgentPolicy, tools: readonly T[]): { allowed: T[]; denied: T[] } {
  const allowed: T[] = [];
  const denied: T[] = [];
  for (const t of tools) (toolDecision(policy, t) === 'deny' ? denied : allowed).push(t);
  return { allowed, denied };
}

/** The write-back actor of a run under an agent (section 10), keys in the contract's order. */
export function agentActor(a: { agentId: string; displayName: string; missionId: string; iterationId: string; rationale: string }) {
  return {
    kind: 'ai' as const,
    principalId: a.agentId,
    displayName: a.displayName,
    missionId: a.missionId,
    iterationId: a.iterationId,
    rationale: a.rationale,
  };
}
