// Resolvers turn a mission input {module, table, id} into text for the
// prompt. A module without a resolver is skipped; a resolver that fails
// drops only its input (CONTRACT.md section 7).

import type { Db } from '../../db/pool.js';
import type { Logger } from '../../log.js';
import type { MissionInput } from '../../mission/mission.js';
import type { ResolvedInput } from '../prompt.js';

export interface ResolveContext {
  db: Db;
  userId: string;
  missionId: string;
  log: Logger;
  /** Set by the key-grant issue when the mission carries a usable grant. */
  grant?: unknown;
}

export type Resolver = (ctx: ResolveContext, input: MissionInput) => Promise<string | null>;

export class ResolverRegistry {
  private readonly byModule = new Map<string, Resolver>();

  register(modules: string | string[], resolver: Resolver): this {
    for (const m of Array.isArray(modules) ? modules : [modules]) this.byModule.set(m, resolver);
    return this;
  }

  has(module: string): boolean {
    return this.byModule.has(module);
  }

  async resolveAll(ctx: ResolveContext, inputs: readonly MissionInput[]): Promise<ResolvedInput[]> {
    const out: ResolvedInput[] = [];
    for (const input of inputs) {
      const resolver = this.byModule.get(input.module);
      if (!resolver) continue;
      try {
        const text = await resolver(ctx, input);
        if (text !== null && text.length > 0) out.push({ module: input.module, table: input.table, id: input.id, text });
      } catch (error) {
        ctx.log.warn({ userId: ctx.userId, missionId: ctx.missionId, module: input.module, err: (error as Error).message }, 'input resolver failed; input dropped');
      }
    }
    return out;
  }
}
