// What the snapshot table derives from a merged Mission record: the
// columns state, deleted and next_run_at. Mirrors the derivations in
// mana_ai.store_mission (sql/functions/snapshot-store.sql); the property test checks both agree.

import { parseIsoStrict } from './iso.js';
import type { JsonObject } from './merge.js';

export function stateOf(record: JsonObject): string | null {
  const s = record['state'];
  return typeof s === 'string' ? s : null;
}

/** Gone unless deletedAt is absent, null, "" or false. */
export function isDeleted(record: JsonObject): boolean {
  const d = record['deletedAt'];
  return !(d === undefined || d === null || d === '' || d === false);
}

export function nextRunAtMs(record: JsonObject): number | null {
  return parseIsoStrict(record['nextRunAt']);
}

/** The due time the reactor schedules, or null when it must not run. */
export function schedulableDueMs(record: JsonObject): number | null {
  if (stateOf(record) !== 'active' || isDeleted(record)) return null;
  return nextRunAtMs(record);
}
