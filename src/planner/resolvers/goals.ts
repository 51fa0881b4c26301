// Goals (app `companion`, plaintext): "title; progress: currentValue / target.value (period)".
// Read by the same one-scope rule as every input (record-scope.ts): the
// owner's personal goal, or a goal of one shared space the owner belongs
// to (audited, fenced apart in the prompt). A ciphertext value is never
// shown.

import { withUserScope } from '../../db/scoped.js';
import { isCiphertext } from '../../grants/ciphertext.js';
import { isDeleted } from '../../merge/derive.js';
import type { Resolver } from './registry.js';
import { auditSharedRead, readScoped } from './record-scope.js';

const show = (v: unknown) => (isCiphertext(v) ? '?' : typeof v === 'string' || typeof v === 'number' ? String(v) : '?');

export const goalsResolver: Resolver = async (ctx, input) => {
  const read = await readScoped(ctx, 'companion', input);
  if (!read.found || !read.merged || isDeleted(read.merged.record)) return null;
  const spaceId = read.scope.kind === 'space' ? read.scope.spaceId : null;
  if (spaceId) await withUserScope(ctx.db, ctx.userId, (trx) => auditSharedRead(trx, ctx, input, spaceId));
  const r = read.merged.record;
  const target = (typeof r['target'] === 'object' && r['target'] !== null ? r['target'] : {}) as Record<string, unknown>;
  const title = typeof r['title'] === 'string' && !isCiphertext(r['title']) ? r['title'] : '(ohne Titel)';
  const period = target['period'] ?? r['period'];
  return { text: `${title}; progress: ${show(r['currentValue'])} / ${show(target['value'])}${period !== undefined ? ` (${show(period)})` : ''}`, spaceId };
};
