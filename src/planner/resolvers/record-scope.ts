// Finds an input record's one scope (scope-rule.ts) and folds the rows of
// that scope only: who wrote rows of it (mana_ai.record_writers, under the
// owner's row-level security with the owner's spaces shown), the writers'
// memberships (mana-auth, cached like the owner's), then the fold. An
// ambiguous record is refused with a `failed` audit row (reason
// `ambiguous-space`) and counted; it never reaches the prompt. Without
// MANA_AUTH_URL, or when mana-auth cannot say, only personal records are
// read.

import { withUserScope, type ScopedTx } from '../../db/scoped.js';
import { insertDecryptAudit } from '../../db/sql/insert-decrypt-audit.js';
import { readRecord, recordWriters, showSpaces, type FoldedRecord } from '../../db/sql/read-record.js';
import { tableLabel } from '../../grants/tables.js';
import type { MissionInput } from '../../mission/mission.js';
import type { ResolveContext } from './registry.js';
import { decideScope, writersToVerify, type ScopeDecision } from './scope-rule.js';

export type ScopedRead =
  | { found: true; scope: Extract<ScopeDecision, { kind: 'personal' | 'space' }>; merged: FoldedRecord | null }
  | { found: false };

export async function readScoped(ctx: ResolveContext, appId: string, input: MissionInput): Promise<ScopedRead> {
  const q = { appId, tableName: input.table, recordId: input.id };
  const ownerSpaces = ctx.spaces ? await ctx.spaces() : null;
  const rows = await withUserScope(ctx.db, ctx.userId, async (trx) => {
    if (ownerSpaces && ownerSpaces.length > 0) await showSpaces(trx, ownerSpaces);
    return recordWriters(trx, q);
  });
  const members = new Map<string, readonly string[] | null>();
  for (const w of writersToVerify(ctx.userId, rows, ownerSpaces)) members.set(w, ctx.membersOf ? await ctx.membersOf(w) : null);
  const scope = decideScope(ctx.userId, rows, ownerSpaces, (u, s) => members.get(u)?.includes(s) === true);
  if (scope.kind === 'none') return { found: false };
  if (scope.kind === 'ambiguous') {
    await withUserScope(ctx.db, ctx.userId, (trx) =>
      insertDecryptAudit(trx, { userId: ctx.userId, missionId: ctx.missionId, iterationId: ctx.iterationId, tableName: input.table, recordId: input.id, status: 'failed', reason: 'ambiguous-space', spaceId: null }),
    );
    ctx.metrics.ambiguousInputs.inc({ table: tableLabel(input.table) });
    ctx.log.warn({ module: input.module, table: input.table, recordId: input.id, spaces: scope.spaces.length }, 'mission input names a record of more than one shared space; not read');
    return { found: false };
  }
  const merged = await withUserScope(ctx.db, ctx.userId, async (trx) => {
    if (scope.kind === 'space') await showSpaces(trx, ownerSpaces ?? []);
    return readRecord(trx, { userId: ctx.userId, ...q, scope });
  });
  return { found: true, scope, merged };
}

/** A read of a shared space's record: its `ok` audit row naming the space, and the counter. */
export async function auditSharedRead(trx: ScopedTx, ctx: ResolveContext, input: MissionInput, spaceId: string): Promise<void> {
  await insertDecryptAudit(trx, {
    userId: ctx.userId, missionId: ctx.missionId, iterationId: ctx.iterationId, tableName: input.table, recordId: input.id,
    status: 'ok', reason: 'shared-space-plaintext', spaceId,
  });
  ctx.metrics.sharedSpaceInputs.inc({ table: tableLabel(input.table) });
}
