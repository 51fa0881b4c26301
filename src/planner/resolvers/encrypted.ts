// Resolvers for the encrypted modules (CONTRACT.md section 7): notes,
// tasks/todo, calendar, journal, kontext. The order of checks is the
// contract's and must not change:
//   1. no usable grant        -> no input, no audit row;
//   2. `<table>:<id>` not in the grant's recordIds (v1) or scope (v2)
//                             -> nothing read, nothing decrypted, a
//                                `scope-violation` row and its counter;
//   3. a field does not open  -> `failed` row with the first failing
//                                field's reason (fields in ascending order);
//   4. all fields open        -> `ok` row, decrypts counted by fields.
// Before them: the record's one scope (record-scope.ts, issue 27). A record
// of a shared space the owner belongs to, written by members of that space
// (CONTRACT.md section 12), is plaintext and needs no grant; each read
// writes an `ok` row with reason `shared-space-plaintext` naming the
// space, so the data-access tab shows it. The owner's personal record is
// folded from the owner's rows only.
// Read and audit happen in one transaction scoped to the user. Decrypted
// text leaves this module only as the formatted prompt line; it is never
// logged, not even at debug level here.

import { withUserScope } from '../../db/scoped.js';
import { insertDecryptAudit } from '../../db/sql/insert-decrypt-audit.js';
import { decryptRecord, v1Opener } from '../../grants/decrypt.js';
import { v2Opener } from '../../grants/v2/decrypt-v2.js';
import { isCiphertext } from '../../grants/ciphertext.js';
import { auditSharedRead, readScoped } from './record-scope.js';
import { tableLabel } from '../../grants/tables.js';
import { isDeleted } from '../../merge/derive.js';
import type { MissionInput } from '../../mission/mission.js';
import type { Resolver, ResolveContext } from './registry.js';

export interface EncryptedModule {
  modules: string[];
  appId: string;
  format(record: Record<string, unknown>): string | null;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);

/** The contract's table: app ids and what the planner sees. */
export const ENCRYPTED_MODULES: readonly EncryptedModule[] = [
  {
    modules: ['notes'],
    appId: 'notes',
    format: (r) => `${text(r['title']) || '(ohne Titel)'}; ${cut(text(r['content']), 500)}`,
  },
  {
    modules: ['tasks', 'todo'],
    appId: 'todo',
    format: (r) => {
      const desc = text(r['description']);
      const due = text(r['dueDate']);
      return `[${text(r['status']) || '?'}] ${text(r['title']) || '(ohne Titel)'}${desc ? ` — ${desc}` : ''}${due ? ` (due: ${due})` : ''}`;
    },
  },
  {
    modules: ['calendar'],
    appId: 'calendar',
    format: (r) => {
      const loc = text(r['location']);
      return `${text(r['title']) || '(ohne Titel)'} @ ${text(r['startDate']) || '?'}${loc ? ` in ${loc}` : ''}`;
    },
  },
  { modules: ['journal'], appId: 'journal', format: (r) => text(r['content']) || null },
  { modules: ['kontext'], appId: 'kontext', format: (r) => cut(text(r['content']), 1500) || null },
];

export const scopeKey = (input: MissionInput) => `${input.table}:${input.id}`;

export function encryptedResolver(m: EncryptedModule): Resolver {
  return async (ctx: ResolveContext, input: MissionInput) => {
    const audit = { userId: ctx.userId, missionId: ctx.missionId, iterationId: ctx.iterationId, tableName: input.table, recordId: input.id };
    // The record's one scope (record-scope.ts): a shared space's record is
    // plaintext and needs no grant; the owner's personal record is opened
    // with the grant. Another user's rows never stand in for either.
    const read = await readScoped(ctx, m.appId, input);
    if (!read.found) return null;
    if (read.scope.kind === 'space') {
      const spaceId = read.scope.spaceId;
      if (!read.merged || isDeleted(read.merged.record)) return null;
      return withUserScope(ctx.db, ctx.userId, async (trx) => {
        // shared-space records are plaintext (CONTRACT.md section 12): a ciphertext there is never prompt text
        if (Object.values(read.merged!.record).some(isCiphertext)) {
          await insertDecryptAudit(trx, { ...audit, status: 'failed', reason: 'ciphertext-in-shared-space', spaceId });
          return null;
        }
        await auditSharedRead(trx, ctx, input, spaceId);
        const text = m.format(read.merged!.record);
        return text === null ? null : { text, spaceId };
      });
    }

    const grant = ctx.grant;
    if (!grant) return null;

    if (!grant.recordIds.has(scopeKey(input))) {
      await withUserScope(ctx.db, ctx.userId, (trx) => insertDecryptAudit(trx, { ...audit, status: 'scope-violation', reason: 'record-not-in-grant-allowlist' }));
      ctx.metrics.grantScopeViolations.inc({ table: tableLabel(input.table) });
      ctx.log.warn({ module: input.module, table: input.table, recordId: input.id }, 'mission input outside its grant; not read, not decrypted');
      return null;
    }

    const merged = read.merged;
    // Nothing to decrypt, so no decrypt attempt and no audit row.
    if (!merged || isDeleted(merged.record)) return null;
    return withUserScope(ctx.db, ctx.userId, async (trx) => {
      // v2: each value under its record key, bound to the owner, table, record, field and epoch
      const open = grant.version === 2 ? v2Opener(grant, { userId: ctx.userId, table: input.table, recordId: input.id }) : v1Opener(grant.key);
      const opened = await decryptRecord(open, merged.record);
      if (!opened.ok) {
        await insertDecryptAudit(trx, { ...audit, status: 'failed', reason: opened.reason });
        ctx.log.warn({ table: input.table, recordId: input.id, field: opened.field, reason: opened.reason }, 'encrypted input could not be decrypted; input dropped');
        return null;
      }
      await insertDecryptAudit(trx, { ...audit, status: 'ok', reason: null });
      if (opened.fields > 0) ctx.metrics.decrypts.inc({ table: tableLabel(input.table) }, opened.fields);
      const text = m.format(opened.record);
      return text === null ? null : { text, spaceId: null };
    });
  };
}
