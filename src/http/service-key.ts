// Constant-time check of the X-Service-Key header. Both sides are hashed
// first, so neither the comparison time nor an early length mismatch says
// anything about the key.

import { createHash, timingSafeEqual } from 'node:crypto';

export function serviceKeyMatches(given: string | string[] | undefined, expected: string | undefined): boolean {
  if (!expected || typeof given !== 'string' || given.length === 0) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
