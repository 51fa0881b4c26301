// The catalog of the configured webapp generation (MANA_AI_WEBAPP).

import { HEAD_TOOLS } from './head.js';
import type { CatalogTool, WebappGeneration } from './types.js';
import { V04_TOOLS } from './v04.js';

export type { CatalogParam, CatalogTool, ParamFormat, ParamType, WebappGeneration } from './types.js';

export const WEBAPP_GENERATIONS: readonly WebappGeneration[] = ['v0.4', 'head'];

export function catalogFor(generation: WebappGeneration): readonly CatalogTool[] {
  return generation === 'head' ? HEAD_TOOLS : V04_TOOLS;
}

export class CatalogError extends Error {
  override name = 'CatalogError';
}

/**
 * Stops the start when the catalog could offer something the executor
 * does not know: every name once, every parameter once, with a type the
 * validator understands (CONTRACT.md section 6: a tool name the runner
 * offers that the generation's list lacks must stop the service).
 */
export function assertCatalog(tools: readonly CatalogTool[], generation: WebappGeneration): void {
  const names = new Set<string>();
  const problems: string[] = [];
  for (const t of tools) {
    if (names.has(t.name)) problems.push(`${t.name} twice`);
    names.add(t.name);
    const params = new Set<string>();
    for (const p of t.params) {
      if (params.has(p.name)) problems.push(`${t.name}.${p.name} twice`);
      params.add(p.name);
      if (!['string', 'number', 'boolean', 'array', 'object'].includes(p.type)) problems.push(`${t.name}.${p.name} has type ${String(p.type)}`);
      if (!p.description) problems.push(`${t.name}.${p.name} has no description`);
    }
  }
  if (problems.length) throw new CatalogError(`the ${generation} tool catalog is inconsistent: ${problems.join('; ')}`);
}
