// Session advisory locks that say which daemon owns which partition of the
// missions, and which daemons are alive. Two-key locks in two namespaces:
// (PARTITION_NS, p) for partition p, (MEMBER_NS, slot) for a daemon's
// membership slot. They live as long as the session that holds them, so a
// daemon that dies (kill -9, lost network) gives everything back at once,
// without a heartbeat table. Every query takes the client it runs on: the
// locks belong to that session.

import { randomInt } from 'node:crypto';
import type pg from 'pg';

/** Fixed: the snapshot's `partition` column is a hash of the user id modulo this (sql/migrations/020_baseline.sql). */
export const PARTITIONS = 64;
/** At most this many daemons share one database. */
export const MAX_MEMBERS = 256;
// Arbitrary, fixed int4 namespaces ("mana", "ai" in ASCII), distinct from
// the one-key locks the trigger and the migrations use.
export const PARTITION_NS = 0x6d616e61;
export const MEMBER_NS = 0x61690000;
/**
 * (GEN_NS, generation): held *shared* by both long-lived connections of a
 * daemon process (partition locks, LISTEN); a claim names the generation
 * and its daemon is alive while any session holds it (sql/functions/claim.sql).
 */
export const GEN_NS = 0x61690002;

/** The channel daemons tell each other on that one joined, gave its partitions back or left (src/reactor/listener.ts listens). */
export const MEMBERS_CHANNEL = 'mana_ai_members';

/** A member notification: who (its membership slot) and what happened. */
export interface MembersNotice {
  e: 'joined' | 'released' | 'left';
  slot: number | null;
}

/** Tells every daemon sharing the database (NOTIFY on MEMBERS_CHANNEL); on any connection, a pool included. */
export async function notifyMembers(q: Pick<pg.ClientBase, 'query'>, notice: MembersNotice): Promise<void> {
  await q.query('SELECT pg_notify($1, $2)', [MEMBERS_CHANNEL, JSON.stringify(notice)]);
}

/** A daemon process's generation: random, drawn once per process. */
export function drawGeneration(): number {
  return randomInt(-0x80000000, 0x7fffffff);
}

export async function holdGeneration(client: pg.ClientBase, generation: number): Promise<void> {
  await client.query('SELECT pg_advisory_lock_shared($1::int4, $2::int4)', [GEN_NS, generation]);
}

export async function tryLock(client: pg.ClientBase, ns: number, key: number): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok', [ns, key]);
  return rows[0]!.ok;
}

export async function unlock(client: pg.ClientBase, ns: number, key: number): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::int4, $2::int4)', [ns, key]);
}

/** Takes the lowest free membership slot; null if MAX_MEMBERS daemons are already here. */
export async function takeMemberSlot(client: pg.ClientBase): Promise<number | null> {
  for (let slot = 0; slot < MAX_MEMBERS; slot++) if (await tryLock(client, MEMBER_NS, slot)) return slot;
  return null;
}

export interface LockView {
  /** membership slots held, ascending */
  members: number[];
  /** partitions some daemon (this one included) holds */
  held: Set<number>;
}

/** Who holds what, as pg_locks shows it for this database. */
export async function readLocks(client: pg.ClientBase): Promise<LockView> {
  const { rows } = await client.query<{ ns: number; key: number }>(
    `SELECT classid::int8 AS ns, objid::int8 AS key
       FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid::int8 IN ($1::int8, $2::int8)`,
    [PARTITION_NS, MEMBER_NS],
  );
  const members: number[] = [];
  const held = new Set<number>();
  for (const r of rows) {
    if (Number(r.ns) === MEMBER_NS) members.push(Number(r.key));
    else held.add(Number(r.key));
  }
  return { members: members.sort((a, b) => a - b), held };
}

/** Blocks until the lock is free (its holder's session ended or it let go), then returns holding it. */
export async function waitForLock(client: pg.ClientBase, ns: number, key: number): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1::int4, $2::int4)', [ns, key]);
}

/** Partitions no daemon holds right now (0 when every one has an owner). The listener's connection check asks this. */
export async function countUnownedPartitions(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ unowned: number }>(
    `SELECT $1::int - count(DISTINCT objid)::int AS unowned
       FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::int8 = $2::int8
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [PARTITIONS, PARTITION_NS],
  );
  return rows[0]!.unowned;
}

/** A backend by its pid and start, which name it even after the pid is reused. */
export interface BackendIdentity {
  pid: number;
  startedAt: string;
}

/** This connection's backend. */
export async function backendIdentity(client: pg.ClientBase): Promise<BackendIdentity> {
  const { rows } = await client.query<{ pid: number; started_at: string }>(
    `SELECT pid, backend_start::text AS started_at FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
  );
  return { pid: Number(rows[0]!.pid), startedAt: rows[0]!.started_at };
}

/** Ends one of our watch backends (blocked in a lock wait, it would not notice its client closing). */
export async function terminateWatchBackend(pool: pg.Pool, pid: number, startedAt: string): Promise<void> {
  await pool.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE pid = $1 AND backend_start::text = $2 AND application_name = 'mana-ai-watch'`,
    [pid, startedAt],
  );
}

/** Every session lock this connection holds, given back at once (a daemon's stop). */
export async function unlockAll(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock_all()');
}

/**
 * Makes the server check this connection's client every `ms` while a query
 * runs (client_connection_check_interval, PostgreSQL 14+): a watch backend
 * blocked in a lock wait then ends when its client is gone.
 */
export async function checkClientEvery(client: pg.ClientBase, ms: number): Promise<void> {
  await client.query(`SET client_connection_check_interval = ${Math.max(0, Math.trunc(ms))}`);
}
