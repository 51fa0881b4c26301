// The contract's merge rule (CONTRACT.md section 3) as a pure function.
// It is the oracle the property test holds the trigger's fold_change
// (sql/functions/snapshot-trigger.sql) to, and what resolvers use to read single records. No I/O here.
//
// Decisions the contract leaves open are the same as in sql/functions/snapshot-trigger.sql and are
// listed in docs/merge-rule.md. Never throws on odd values except through
// FoldError, which marks a row the trigger would record in snapshot_errors.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface MergedRecord {
  /** The record as a client holds it, including `id`. */
  record: JsonObject;
  /** Per-field timestamps (the merge rule's bookkeeping). */
  fieldTs: Record<string, string>;
}

export interface ChangeRow {
  op: string;
  recordId: string;
  data: unknown;
  fieldTimestamps: unknown;
  /** `created_at` of the row as an ISO string (UTC, ms, Z). */
  createdAt: string;
}

/** A row that cannot be folded; the trigger records these in snapshot_errors. */
export class FoldError extends Error {
  override name = 'FoldError';
}

const BOOKKEEPING = new Set(['id', '__fieldTimestamps', '__fieldActors', '__lastActor']);

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function tsText(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * Compares two strings by Unicode code point, which is the byte order of
 * their UTF-8 form and so Postgres' `COLLATE "C"` order. Plain `<` on JS
 * strings compares UTF-16 code units, which differs above U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x += x >= 0xe000 ? -0x800 : 0x2000;
    if (y >= 0xd800) y += y >= 0xe000 ? -0x800 : 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

const tsGte = (a: string, b: string): boolean => compareCodePoints(a, b) >= 0;

/** Sets an own property, also for keys like `__proto__` that come from JSON. */
function setKey<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function ownEntries(obj: JsonObject): [string, Json][] {
  return Object.keys(obj).map((k) => [k, obj[k]!]);
}

/**
 * Which webapp's merge rule: `v0.4` (CONTRACT.md section 3) or `head`
 * (section 12): no `updatedAt` fallback for a field without a stored
 * timestamp, a soft delete sets only `deletedAt`, and an insert row's own
 * per-field timestamps (mana-auth's bootstrap rows) are used where given.
 */
export type MergeRule = 'v0.4' | 'head';

/** Applies one change row. `null` in = record unknown; `null` out = removed. */
export function foldChange(state: MergedRecord | null, row: ChangeRow, rule: MergeRule = 'v0.4'): MergedRecord | null {
  const head = rule === 'head';
  let data: unknown = row.data;
  if (data === null || data === undefined) data = null;
  if (data !== null && !isObject(data)) {
    throw new FoldError(`data is a JSON ${Array.isArray(data) ? 'array' : typeof data}, not an object`);
  }
  const dataObj = data as JsonObject | null;

  if (row.op === 'delete') {
    if (dataObj === null || !Object.hasOwn(dataObj, 'deletedAt')) return null;
    const del = tsText(dataObj['deletedAt']);
    if (del === null) throw new FoldError('delete with deletedAt that is not a string');
    if (state === null) return null;
    const stored = tsText(state.fieldTs['deletedAt']) ?? tsText(state.record['deletedAt']) ?? '';
    if (!tsGte(del, stored)) return state;
    if (head) return { record: { ...state.record, deletedAt: del }, fieldTs: { ...state.fieldTs, deletedAt: del } };
    return {
      record: { ...state.record, deletedAt: del, updatedAt: del },
      fieldTs: { ...state.fieldTs, deletedAt: del, updatedAt: del },
    };
  }

  const fields: JsonObject = {};
  for (const [k, v] of ownEntries(dataObj ?? {})) if (!BOOKKEEPING.has(k)) setKey(fields, k, v);
  const fts: Record<string, string> = {};
  let merged: JsonObject;

  if (row.op === 'insert') {
    const rt = tsText(fields['updatedAt']) ?? tsText(fields['createdAt']) ?? row.createdAt;
    // HEAD: a field the row gives a timestamp for keeps it (bootstrap inserts)
    const own: JsonObject = head && isObject(row.fieldTimestamps) ? row.fieldTimestamps : {};
    for (const k of Object.keys(fields)) setKey(fts, k, tsText(Object.hasOwn(own, k) ? own[k] : undefined) ?? rt);
    merged = fields;
  } else if (row.op === 'update') {
    const given: JsonObject = isObject(row.fieldTimestamps) ? row.fieldTimestamps : {};
    merged = {};
    for (const [k, v] of ownEntries(fields)) {
      const ts = tsText(Object.hasOwn(given, k) ? given[k] : undefined);
      if (ts === null) continue; // never reaches a client
      setKey(fts, k, ts);
      setKey(merged, k, v);
    }
  } else {
    throw new FoldError(`unknown op ${row.op}`);
  }

  if (state === null) {
    return { record: { ...merged, id: row.recordId }, fieldTs: fts };
  }

  const record: JsonObject = { ...state.record };
  const fieldTs: Record<string, string> = { ...state.fieldTs };
  const baseUpdated = head ? '' : (tsText(state.record['updatedAt']) ?? '');
  for (const [k, v] of ownEntries(merged)) {
    const ts = fts[k]!;
    const stored = tsText(Object.hasOwn(state.fieldTs, k) ? state.fieldTs[k] : undefined) ?? baseUpdated;
    if (tsGte(ts, stored)) {
      setKey(record, k, v);
      setKey(fieldTs, k, ts);
    }
  }
  return { record, fieldTs };
}

/**
 * Folds rows in log order. Rows that raise FoldError change nothing, as in
 * the trigger (which records them in snapshot_errors).
 */
export function foldRows(rows: Iterable<ChangeRow>, onError?: (row: ChangeRow, error: FoldError) => void, rule: MergeRule = 'v0.4'): MergedRecord | null {
  let state: MergedRecord | null = null;
  for (const row of rows) {
    try {
      state = foldChange(state, row, rule);
    } catch (error) {
      if (!(error instanceof FoldError)) throw error;
      onError?.(row, error);
    }
  }
  return state;
}
