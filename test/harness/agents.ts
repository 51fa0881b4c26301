// Agents as the webapp writes them (CONTRACT.md section 10), through
// mana-sync's path (pushChange): a first insert with the whole record, and
// updates with per-field timestamps.

import type pg from 'pg';
import { pushChange } from './changes.js';

const iso = (ms: number) => new Date(ms).toISOString();

export function agentRecord(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = iso(Date.now() - 1000);
  return {
    id, createdAt: now, updatedAt: now, name: `Agent ${id}`, role: 'plant den Alltag',
    policy: { tools: {}, defaultForAi: 'propose' }, maxConcurrentMissions: 1, state: 'active',
    ...over,
  };
}

export const pushAgent = (pool: pg.Pool, userId: string, id: string, over: Record<string, unknown> = {}) =>
  pushChange(pool, { userId, recordId: id, appId: 'ai', tableName: 'agents', op: 'insert', data: agentRecord(id, over) });

export const updateAgent = (pool: pg.Pool, userId: string, id: string, data: Record<string, unknown>) => {
  const ts = iso(Date.now());
  return pushChange(pool, {
    userId, recordId: id, appId: 'ai', tableName: 'agents', op: 'update', data,
    fieldTimestamps: Object.fromEntries(Object.keys(data).map((k) => [k, ts])),
  });
};
