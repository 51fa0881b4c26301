// The one retry schedule for reconnecting to Postgres and reloading the
// schedule: exponential from 250 ms, capped at 2 s so a database that comes
// back is used within seconds (docs/reliability.md). Jitter spreads the
// reconnects of many daemons.

export const RETRY_CAP_MS = 2_000;

export function retryDelayMs(attempt: number, opts: { jitter?: boolean } = {}): number {
  const delay = Math.min(RETRY_CAP_MS, 250 * 2 ** Math.min(attempt, 6));
  return opts.jitter ? delay * (0.5 + Math.random() / 2) : delay;
}

/**
 * When to retry a claim that said "not now" for `requestedAtMs`: that time
 * comes from the database's clock, so a daemon whose clock runs ahead would
 * see it as past and claim again at once, in a loop, for as long as the
 * skew lasts. Never sooner than `minMs` from now.
 */
export function clampRetryAt(requestedAtMs: number, nowMs: number, minMs: number): number {
  return Math.max(Number.isFinite(requestedAtMs) ? requestedAtMs : nowMs, nowMs + minMs);
}
