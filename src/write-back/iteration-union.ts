// The repair of lost iterations, as a pure rule (issue 28): the current
// folded array plus every lost iteration whose id it lacks, each id once,
// ordered by startedAt, then id. For an id present in both the current
// version wins (the device's feedback, staging markers, approvals and
// statuses stand); among losses of one id the latest recorded wins.
// Elements without an id are kept where the current array has them.

import { compareCodePoints } from '../merge/merge.js';

type Json = unknown;

const idOf = (it: Json): string | null =>
  it !== null && typeof it === 'object' && !Array.isArray(it) && 'id' in it ? JSON.stringify((it as { id: unknown }).id) : null;
const startedOf = (it: Json): string =>
  it !== null && typeof it === 'object' && typeof (it as { startedAt?: unknown }).startedAt === 'string' ? (it as { startedAt: string }).startedAt : '';

export interface IterationUnion {
  /** the array to write; null when nothing is missing */
  iterations: Json[] | null;
  /** the ids restored, in the order written */
  restored: unknown[];
}

/** `losses`: the recorded lost arrays, oldest loss first. */
export function unionWithLost(current: Json, losses: readonly Json[]): IterationUnion {
  const now = Array.isArray(current) ? current : [];
  const have = new Set(now.map(idOf).filter((x): x is string => x !== null));
  const missing = new Map<string, Json>();
  for (const lost of losses) {
    if (!Array.isArray(lost)) continue;
    for (const it of lost) {
      const id = idOf(it);
      if (id !== null && !have.has(id)) missing.set(id, it);
    }
  }
  if (missing.size === 0) return { iterations: null, restored: [] };
  const merged = [...now, ...missing.values()]
    .map((it, i) => ({ it, i }))
    .sort((a, b) => compareCodePoints(startedOf(a.it), startedOf(b.it)) || compareCodePoints(idOf(a.it) ?? '', idOf(b.it) ?? '') || a.i - b.i)
    .map((x) => x.it);
  return { iterations: merged, restored: [...missing.values()].map((it) => (it as { id: unknown }).id) };
}
