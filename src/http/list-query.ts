// The query of the user-facing list routes (the decrypt audit, the
// research sources): an optional missionId and a limit, a positive whole
// number with a default, never more than the route's maximum. A bad limit
// is a 400 that names the bound. Pure.

import { HttpError } from './server.js';

export function readListQuery(url: URL, limits: { defaultLimit: number; maxLimit: number }): { missionId: string | undefined; limit: number } {
  const missionId = url.searchParams.get('missionId') || undefined;
  const rawLimit = url.searchParams.get('limit');
  let limit = limits.defaultLimit;
  if (rawLimit !== null && rawLimit !== '') {
    const n = Number(rawLimit);
    if (!Number.isInteger(n) || n < 1) throw new HttpError(400, 'invalid-limit', `limit must be a positive integer (at most ${limits.maxLimit} rows are returned)`);
    limit = Math.min(n, limits.maxLimit);
  }
  return { missionId, limit };
}
