// The one retry schedule for reconnecting to Postgres and reloading the
// schedule: exponential from 250 ms, capped at 2 s so a database that comes
// back is used within seconds (docs/reliability.md). Jitter spreads the
// reconnects of many daemons.

export const RETRY_CAP_MS = 2_000;

export function retryDelayMs(attempt: number, opts: { jitter?: boolean } = {}): number {
  const delay = Math.min(RETRY_CAP_MS, 250 * 2 ** Math.min(attempt, 6));
  return opts.jitter ? delay * (0.5 + Math.random() / 2) : delay;
}
