// Goals (app `companion`, plaintext): "title; progress: currentValue / target.value (period)".

import { withUserScope } from '../../db/scoped.js';
import { readRecord } from '../../db/sql/read-record.js';
import { isDeleted } from '../../merge/derive.js';
import type { Resolver } from './registry.js';

const show = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '?');

export const goalsResolver: Resolver = async (ctx, input) => {
  const merged = await withUserScope(ctx.db, ctx.userId, (trx) =>
    readRecord(trx, { userId: ctx.userId, appId: 'companion', tableName: input.table, recordId: input.id }),
  );
  if (!merged || isDeleted(merged.record)) return null;
  const r = merged.record;
  const target = (typeof r['target'] === 'object' && r['target'] !== null ? r['target'] : {}) as Record<string, unknown>;
  const title = typeof r['title'] === 'string' ? r['title'] : '(ohne Titel)';
  const period = target['period'] ?? r['period'];
  return `${title}; progress: ${show(r['currentValue'])} / ${show(target['value'])}${period !== undefined ? ` (${show(period)})` : ''}`;
};
