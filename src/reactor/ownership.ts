// Which partitions of the missions this daemon schedules. Ownership is a
// session advisory lock per partition on a connection of its own; a
// membership slot lock says the daemon is alive. The split is computed by
// balance.ts from who is alive; daemons tell each other about joins and
// releases with NOTIFY mana_ai_members, and each daemon watches one peer
// (the next membership slot, in a ring) by waiting for that peer's slot
// lock on a second connection: the wait returns the moment the peer's
// session ends, so a crashed daemon is noticed without any polling.
//
// It never runs a mission itself and never decides whether one runs: the
// claim in Postgres stays the last guard, also while partitions move.

import { GuardedEmitter, listenerErrorReporter } from './events.js';
import pg from 'pg';
import { retryDelayMs } from './backoff.js';
import { planRebalance } from './balance.js';
import { MAX_MEMBERS, MEMBER_NS, PARTITION_NS, PARTITIONS, backendIdentity, type BackendIdentity, checkClientEvery, holdGeneration, readLocks, notifyMembers, takeMemberSlot, tryLock, type MembersNotice, unlock, unlockAll, waitForLock } from '../db/sql/partition-locks.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ClaimWitness } from '../db/sql/claim-run.js';
import { coerceError } from '../coerce-error.js';
import { KEEPALIVE } from '../db/keepalive.js';

/** The connection that waits for the watched peer's slot, and its backend once known. */
interface Watch {
  client: pg.Client;
  slot: number;
  backend: BackendIdentity | null;
}

export interface OwnershipChange {
  acquired: number[];
  released: number[];
}

/** What the ownership tells the reactor. */
export interface OwnershipEvents {
  changed: [OwnershipChange];
  /** the lock connection is back under a new session */
  reconnected: [];
  /** a watched peer's session ended (its member slot) */
  'peer-lost': [slot: number];
}

export interface OwnershipOptions {
  connectionString: string;
  log: Logger;
  metrics: Metrics;
  /** this daemon process's generation, held shared on the partition connection (sql/functions/claim.sql) */
  generation: number;
  /** NOTIFY on another connection (the pool), used once this session is gone. */
  notifyViaPool(notice: MembersNotice): Promise<void>;
  /**
   * Ends a backend of our own role on another connection (the pool): a
   * watch connection blocked in pg_advisory_lock does not read its socket,
   * so closing it client-side would leave the backend waiting until the
   * watched peer dies (issue 18, item 4).
   */
  terminateBackend(pid: number, startedAt: string): Promise<void>;
}

/**
 * The backstop for a daemon that dies while it watches (its socket closes,
 * nobody terminates the backend): the server checks the watch connection's
 * socket this often during the lock wait and ends the backend (PG 14+;
 * older servers ignore the setting).
 */
const WATCH_CONNECTION_CHECK_MS = 2_000;

export class PartitionOwnership extends GuardedEmitter<OwnershipEvents> {
  private client: pg.Client | null = null;
  private watcher: Watch | null = null;
  private slot: number | null = null;
  /** backend pid of the lock connection: with the slot, the witness of our claims */
  private pid: number | null = null;
  private readonly ownedSet = new Set<number>();
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private reconnecting = false;

  constructor(private readonly o: OwnershipOptions) {
    super(listenerErrorReporter(o.log, o.metrics));
  }

  /** The lock connection is up (it is published only once joined). */
  get connected(): boolean {
    return this.client !== null;
  }

  get owned(): ReadonlySet<number> {
    return this.ownedSet;
  }

  /** What our claims name as their daemon's session (sql/functions/claim.sql); null while the lock connection is down. */
  get witness(): ClaimWitness {
    const s = this.session;
    return { slot: s?.slot ?? null, pid: s?.pid ?? null, gen: this.o.generation };
  }

  /** The membership session alone, for moving claims to it after a reconnect. */
  get session(): { slot: number; pid: number } | null {
    return this.client !== null && this.slot !== null && this.pid !== null ? { slot: this.slot, pid: this.pid } : null;
  }

  owns(partition: number): boolean {
    return this.ownedSet.has(partition);
  }

  /** Joins (membership slot), says so, and takes this daemon's share. */
  async start(): Promise<void> {
    await this.connect();
    await this.rebalance('start');
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.o.connectionString, application_name: 'mana-ai-partitions', ...KEEPALIVE });
    client.on('error', () => {}); // 'end' follows and handles it
    client.on('end', () => {
      if (this.client === client) this.lost();
    });
    await client.connect();
    // with the membership slot, the witness of our claims (sql/functions/claim.sql)
    const { pid } = await backendIdentity(client);
    const slot = await takeMemberSlot(client);
    if (slot === null) {
      await client.end().catch(() => {});
      throw new Error(`every membership slot is taken: more than ${MAX_MEMBERS} mana-ai daemons on one database`);
    }
    await holdGeneration(client, this.o.generation);
    await notifyMembers(client, { e: 'joined', slot });
    // Published only now: a rebalance must not share the client with the
    // queries above (one query at a time per connection).
    this.client = client;
    this.slot = slot;
    this.pid = pid;
    this.o.log.info({ slot }, 'joined the daemons sharing this database');
  }

  /** Our session is gone, and every lock with it. */
  private lost(): void {
    if (this.stopped) return;
    this.client = null;
    void this.stopWatching();
    const released = [...this.ownedSet];
    this.ownedSet.clear();
    this.o.metrics.partitionsOwned.set(0);
    this.o.log.warn({ released: released.length }, 'partition connection lost; its locks are gone; reconnecting');
    if (released.length) this.emit('changed', { acquired: [], released } satisfies OwnershipChange);
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await this.connect();
          this.o.metrics.ownershipReconnects.inc();
          this.o.log.info({ attempt }, 'partition connection re-established');
          await this.rebalance('reconnect');
          this.emit('reconnected');
          return;
        } catch (error) {
          const delay = retryDelayMs(attempt, { jitter: true });
          this.o.log.warn({ attempt, retryInMs: Math.round(delay), err: coerceError(error).message }, 'partition connection failed; retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** Recomputes the split; calls made while one runs are folded into one more run. */
  rebalance(reason: string): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.rebalanceOnce(reason).catch((error: unknown) => {
            this.o.log.warn({ reason, err: coerceError(error).message }, 'rebalance failed; the next membership change or reconnect retries');
          });
        } while (this.again && !this.stopped);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private async rebalanceOnce(reason: string): Promise<void> {
    const client = this.client;
    if (!client || this.slot === null || this.stopped) return;
    const view = await readLocks(client);
    const plan = planRebalance({ partitions: PARTITIONS, members: view.members, mySlot: this.slot, owned: this.ownedSet, held: view.held });
    const released: number[] = [];
    for (const p of plan.release) {
      await unlock(client, PARTITION_NS, p);
      this.ownedSet.delete(p);
      released.push(p);
    }
    const acquired: number[] = [];
    for (const p of plan.candidates) {
      if (this.ownedSet.size >= plan.target) break;
      if (await tryLock(client, PARTITION_NS, p)) {
        this.ownedSet.add(p);
        acquired.push(p);
      }
    }
    this.o.metrics.partitionsOwned.set(this.ownedSet.size);
    this.o.metrics.members.set(view.members.length);
    this.o.metrics.rebalances.inc({ reason });
    if (acquired.length || released.length) {
      this.o.log.info(
        { reason, members: view.members.length, slot: this.slot, target: plan.target, owned: this.ownedSet.size, acquired: acquired.length, released: released.length },
        'partitions rebalanced',
      );
      this.emit('changed', { acquired, released } satisfies OwnershipChange);
    }
    if (released.length) await notifyMembers(client, { e: 'released', slot: this.slot });
    this.watchNext(view.members);
  }

  /** Watches the next membership slot after ours (a ring), or nobody when alone. */
  private watchNext(members: readonly number[]): void {
    if (this.slot === null || this.stopped) return;
    const others = members.filter((s) => s !== this.slot);
    const next = others.length === 0 ? null : (others.find((s) => s > this.slot!) ?? others[0]!);
    if (this.watcher?.slot === next) return;
    // The old watch backend is gone before the new one connects: one per daemon, ever.
    const previous = this.stopWatching();
    if (next === null) return;
    const client = new pg.Client({ connectionString: this.o.connectionString, application_name: 'mana-ai-watch', ...KEEPALIVE });
    const w: Watch = { client, slot: next, backend: null };
    this.watcher = w;
    client.on('error', () => {});
    void (async () => {
      try {
        await previous;
        if (this.watcher !== w || this.stopped) return; // re-targeted meanwhile: never connected
        await client.connect();
        w.backend = await backendIdentity(client);
        await checkClientEvery(client, WATCH_CONNECTION_CHECK_MS).catch(() => {});
        // Re-targeted or stopped while connecting: end it here, before the wait.
        if (this.watcher !== w || this.stopped) {
          void client.end().catch(() => {});
          return;
        }
        await waitForLock(client, MEMBER_NS, next);
      } catch (error) {
        // Ended on purpose (re-targeted, stopped): nothing to do. Otherwise
        // the watch connection itself died (network, pg_terminate_backend):
        // watch again, or a later death of that peer would go unnoticed.
        if (this.watcher !== w || this.stopped) return;
        this.watcher = null;
        void client.end().catch(() => {});
        this.o.metrics.watchReconnects.inc();
        const delay = retryDelayMs(1, { jitter: true });
        this.o.log.warn({ peerSlot: next, err: coerceError(error).message, retryInMs: Math.round(delay) }, 'watch connection lost; watching again');
        setTimeout(() => void this.rebalance('watch-lost'), delay).unref();
        return;
      }
      // Granted: the peer's session has ended (crash or shutdown).
      await unlock(client, MEMBER_NS, next).catch(() => {});
      if (this.watcher !== w || this.stopped) return;
      this.o.log.info({ peerSlot: next }, 'a peer daemon is gone; taking over its share');
      this.o.metrics.peersLost.inc();
      void this.stopWatching();
      await this.o.notifyViaPool({ e: 'left', slot: next }).catch(() => {});
      await this.rebalance('peer-left');
      this.emit('peer-lost', next);
    })();
  }

  /**
   * Ends the watch: its backend is terminated first (it is blocked in the
   * lock wait and would not notice the client going away), then the client
   * is closed. At most one watch backend per daemon, ever.
   */
  private stopWatching(): Promise<void> {
    const w = this.watcher;
    this.watcher = null;
    if (!w) return Promise.resolve();
    const backend = w.backend;
    return (async () => {
      if (backend !== null) await this.o.terminateBackend(backend.pid, backend.startedAt).catch(() => {});
      await w.client.end().catch(() => {});
    })();
  }

  /** Gives every partition back at once and tells the others. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.stopWatching();
    await this.running?.catch(() => {}); // one query at a time on the lock connection
    const client = this.client;
    this.client = null;
    this.ownedSet.clear();
    this.o.metrics.partitionsOwned.set(0);
    if (client) {
      await unlockAll(client).catch(() => {});
      await client.end().catch(() => {});
      await this.o.notifyViaPool({ e: 'left', slot: this.slot }).catch(() => {});
    }
  }
}
