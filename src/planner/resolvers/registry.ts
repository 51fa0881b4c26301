// Resolvers turn a mission input {module, table, id} into text for the
// prompt. A module without a resolver is skipped; a resolver that fails
// drops only its input (CONTRACT.md section 7). The registry also knows
// which modules are encrypted, so the planner unwraps a grant only when a
// mission links something that needs it.

import type { Db } from '../../db/pool.js';
import type { UsableGrant } from '../../grants/unwrap.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { MissionInput } from '../../mission/mission.js';
import type { ResolvedInput } from '../prompt.js';
import { coerceError } from '../../coerce-error.js';
import { cutText, inputCharsFor } from '../plan-limits.js';

export interface ResolveContext {
  db: Db;
  userId: string;
  missionId: string;
  /** The iteration this run will write; recorded in the decrypt audit. */
  iterationId: string | null;
  log: Logger;
  metrics: Metrics;
  /** The unwrapped grant of this run, or null (no grant, or it could not be used). */
  grant: UsableGrant | null;
  /**
   * The owner's shared spaces (mana-auth), or null when not known: no
   * MANA_AUTH_URL, or mana-auth could not say. Asked only when an input
   * could be a shared-space record.
   */
  spaces?: () => Promise<readonly string[] | null>;
  /** Any user's shared spaces (mana-auth, cached): the writers of a shared record are verified with it; absent = none verified. */
  membersOf?: (userId: string) => Promise<readonly string[] | null>;
}

/** The input's text and, for a record of a shared space, that space (the prompt fences it as third-party content). */
export type Resolved = { text: string; spaceId: string | null };
export type Resolver = (ctx: ResolveContext, input: MissionInput) => Promise<Resolved | null>;

export class ResolverRegistry {
  private readonly byModule = new Map<string, { resolver: Resolver; encrypted: boolean }>();

  register(modules: string | string[], resolver: Resolver, opts: { encrypted?: boolean } = {}): this {
    for (const m of Array.isArray(modules) ? modules : [modules]) this.byModule.set(m, { resolver, encrypted: opts.encrypted === true });
    return this;
  }

  has(module: string): boolean {
    return this.byModule.has(module);
  }

  /** True when one of the inputs is read by an encrypted resolver. */
  needsGrant(inputs: readonly MissionInput[]): boolean {
    return inputs.some((i) => this.byModule.get(i.module)?.encrypted === true);
  }

  async resolveAll(ctx: ResolveContext, inputs: readonly MissionInput[]): Promise<ResolvedInput[]> {
    const out: ResolvedInput[] = [];
    const max = inputCharsFor(inputs.length);
    for (const input of inputs) {
      const entry = this.byModule.get(input.module);
      if (!entry) continue;
      try {
        const r = await entry.resolver(ctx, input);
        // every input's text is bounded in the prompt, whatever its resolver does
        if (r !== null && r.text.length > 0) {
          out.push({ module: input.module, table: input.table, id: input.id, text: cutText(r.text, max), sensitive: entry.encrypted, ...(r.spaceId ? { spaceId: r.spaceId } : {}) });
        }
      } catch (error) {
        ctx.log.warn({ userId: ctx.userId, missionId: ctx.missionId, module: input.module, table: input.table, recordId: input.id, err: coerceError(error).message }, 'input resolver failed; input dropped');
      }
    }
    return out;
  }
}
