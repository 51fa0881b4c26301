// Which failures are the database's (or the connection's) and not the
// mission's. A run that meets one of these after its claim gives the claim
// back and is tried again with backoff (src/run/execute-run.ts); anything
// else is about the mission's content or a bug, and is written back as a
// failed iteration together with the next due time. Pure: no I/O.

/** SQLSTATE classes and codes that say nothing about the data written. */
const OUTSIDE_CLASSES = new Set([
  '08', // connection exception
  '40', // serialization failure, deadlock
  '53', // insufficient resources (out of connections, disk, memory)
  '57', // operator intervention: query_canceled (statement_timeout), admin shutdown, crash shutdown, cannot connect now
  '58', // system error (I/O)
  'XX', // internal error
]);
// lock_timeout, object in use, permission denied (an operator's change, not the mission's), idle-in-transaction timeout, read-only transaction
const OUTSIDE_CODES = new Set(['55P03', '55006', '42501', '25P03', '25006']);

/** Node network errors and pg/pg-pool's own messages for a lost or absent connection. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const CONNECTION_MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /Connection ended unexpectedly/i,
  /server closed the connection unexpectedly/i,
];

export type FailureClass = { outside: true; reason: string } | { outside: false };

export function classifyFailure(error: unknown): FailureClass {
  if (!error || typeof error !== 'object') return { outside: false };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return { outside: true, reason: 'connection' };
    if (/^[0-9A-Z]{5}$/.test(code)) {
      if (OUTSIDE_CODES.has(code)) return { outside: true, reason: code === '42501' ? 'permission' : code === '55P03' ? 'lock-timeout' : 'database' };
      const cls = code.slice(0, 2);
      if (OUTSIDE_CLASSES.has(cls)) {
        // 57P01/57P02: the server ended this connection (pg_terminate_backend, a shutdown): a lost connection
        const reason = cls === '08' || code === '57P01' || code === '57P02' ? 'connection' : code === '57014' ? 'statement-timeout' : cls === '40' ? 'conflict' : cls === '53' ? 'resources' : 'database';
        return { outside: true, reason };
      }
      return { outside: false };
    }
  }
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string' && CONNECTION_MESSAGES.some((re) => re.test(message))) return { outside: true, reason: 'connection' };
  return { outside: false };
}

/**
 * When a run given back for the `attempts`-th time is tried again: `baseMs`
 * (5 s by default), doubling, at most 5 min, with full jitter between half
 * and all of it. The LLM is asked only for the first MAX_ATTEMPTS claims of
 * a due time, and a plan already made is written without asking again.
 */
export function runRetryDelayMs(attempts: number, baseMs = 5_000, random = Math.random): number {
  const base = Math.min(300_000, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 15)));
  return Math.round(base * (0.5 + random() / 2));
}
