// Connection pools. One place decides how pg parses values: int8 becomes a
// JS number (our bigints are ids, versions and counts, all far below 2^53),
// per pool, without touching pg's global parsers.

import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Database } from './schema.js';

const INT8_OID = 20;

const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number.parseInt(v, 10);
    return pg.types.getTypeParser(oid, format);
  },
};

export interface PoolOptions {
  connectionString: string;
  applicationName?: string;
  max?: number;
  /** told about a connection a checked-out client lost (the query in flight rejects too) */
  onClientError?: (error: Error) => void;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    application_name: opts.applicationName ?? 'mana-ai',
    max: opts.max ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    types: typeParsers,
  });
  // An idle client losing its connection must not crash the process; the
  // pool drops it and the next checkout connects afresh.
  pool.on('error', () => {});
  // pg-pool removes its idle-error listener while a client is checked out
  // (Kysely checks clients out for every transaction), so a backend that
  // dies mid-transaction (failover, pg_terminate_backend, a network cut,
  // idle_in_transaction_session_timeout) would emit 'error' on a client
  // with no listener and end the process. Every client gets a listener of
  // its own for its whole life; the failed query rejects as well, so the
  // transaction ends through the caller's normal error path.
  pool.on('connect', (client) => {
    client.on('error', (error) => opts.onClientError?.(error));
  });
  return pool;
}

export function createDb(pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export type Db = Kysely<Database>;
