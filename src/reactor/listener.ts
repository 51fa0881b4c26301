// The LISTEN connection. It reconnects by itself with backoff and LISTENs
// again; each re-established connection is reported so the reactor can
// resync, since notifications sent while it was down are lost.
//
// Its only query while idle is the connection check every 30 s, and that
// check carries a question worth asking: how many of the 64 partitions have
// no owner (a peer died while nobody watched it, a rebalance failed)? The
// answer goes to the reactor, which rebalances when it is not zero. This is
// why the listener is our own code on pg.Client rather than pg-listen:
// pg-listen's check runs a fixed query on a connection it does not expose
// (docs/dependencies.md).

import pg from 'pg';
import { countUnownedPartitions, holdGeneration } from '../db/sql/partition-locks.js';
import { listen } from '../db/sql/listen.js';
import { retryDelayMs } from './backoff.js';
import { KEEPALIVE } from '../db/keepalive.js';
import { MEMBERS_CHANNEL } from '../db/sql/partition-locks.js';
import { coerceError } from '../coerce-error.js';

export const CHANNEL = 'mana_ai_missions';
/** The trigger's fold errors (sql/functions/rebuild.sql): payload { id, p, t } of a mana_ai.snapshot_errors row. */
export const ERRORS_CHANNEL = 'mana_ai_snapshot_errors';
/** Agents whose gate fields or policy changed (sql/functions/snapshot-store.sql): payload AgentPayload. */
export const AGENTS_CHANNEL = 'mana_ai_agents';
/** Iterations a write erased (sql/functions/snapshot-trigger.sql): payload { id, p } of a mana_ai.lost_iterations row. */
export const LOST_CHANNEL = 'mana_ai_lost_iterations';
const CHANNELS = [CHANNEL, ERRORS_CHANNEL, MEMBERS_CHANNEL, AGENTS_CHANNEL, LOST_CHANNEL] as const;

export interface SchedulePayload {
  s: number;
  v: number;
  p: number;
  d: number | null;
  /** set when a claim was given back: re-arm even at the same version */
  r?: number;
  /** the mission's agent ref (sql/functions/snapshot-store.sql), null or absent = none */
  g?: number | null;
  /** the mission's user ref (sql/migrations/020_baseline.sql), for round-robin across users; absent from older triggers */
  u?: number | null;
  /** 'unparked': the trigger or an operator unparked the mission (sql/functions/unpark.sql) */
  x?: string;
}

/** An agent's gate fields: ref, version, partition, gate state, max concurrent runs, budget (null = none). */
export interface AgentPayload {
  g: number;
  v: number;
  p: number;
  s: 'active' | 'paused' | 'archived' | 'deleted' | 'absent';
  c: number;
  b: number | null;
}

export interface SnapshotErrorPayload {
  id: number | null;
  /** the mission's partition; null when the row had no user */
  p: number | null;
  /** a transient failure: the snapshot must be repaired */
  t: boolean;
}

export interface ListenerHandlers {
  onNotification(payload: SchedulePayload): void;
  onReconnected(): void;
  onDisconnected(error: Error): void;
  onInvalidPayload(raw: unknown): void;
  onSnapshotError(payload: SnapshotErrorPayload): void;
  onAgentChanged(payload: AgentPayload): void;
  /** the trigger recorded iterations a write erased: { id, p } (null when unreadable) */
  onLostIterations(payload: { id: number | null; p: number | null }): void;
  /** A daemon joined, left or released partitions (ownership.ts). */
  /** a daemon joined, released partitions or left (`e` of the payload; null when unreadable) */
  onMembersChanged(event: string | null): void;
  /** The connection check's answer: partitions nobody holds right now. */
  onCheck(unownedPartitions: number): void;
}

function isPayload(x: unknown): x is SchedulePayload {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return Number.isSafeInteger(o['s']) && Number.isSafeInteger(o['v']) && Number.isSafeInteger(o['p']) && (o['d'] === null || Number.isFinite(o['d'])) &&
    (o['g'] === undefined || o['g'] === null || Number.isSafeInteger(o['g'])) &&
    (o['u'] === undefined || o['u'] === null || Number.isSafeInteger(o['u']));
}

const GATES = new Set(['active', 'paused', 'archived', 'deleted', 'absent']);

export function isAgentPayload(x: unknown): x is AgentPayload {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return Number.isSafeInteger(o['g']) && Number.isSafeInteger(o['v']) && Number.isSafeInteger(o['p']) &&
    typeof o['s'] === 'string' && GATES.has(o['s']) && Number.isSafeInteger(o['c']) && (o['b'] === null || Number.isSafeInteger(o['b']));
}

function parse(raw: string | undefined): unknown {
  try {
    return raw === undefined ? undefined : JSON.parse(raw);
  } catch {
    return raw;
  }
}

export function parseSnapshotError(raw: unknown): SnapshotErrorPayload {
  const o = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const int = (v: unknown) => (Number.isSafeInteger(v) ? (v as number) : null);
  return { id: int(o['id']), p: int(o['p']), t: o['t'] === true };
}

export class ScheduleListener {
  private client: pg.Client | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private reconnecting = false;
  connected = false;
  lastNotificationAt: Date | null = null;

  constructor(
    private readonly connectionString: string,
    private readonly handlers: ListenerHandlers,
    private readonly opts: { checkMs?: number; generation?: number } = {},
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.connectionString, application_name: 'mana-ai-listener', ...KEEPALIVE });
    client.on('error', () => {}); // 'end' follows and handles it
    client.on('end', () => {
      if (this.client === client) this.lost(new Error('LISTEN connection lost'));
    });
    client.on('notification', (n) => this.dispatch(n.channel, parse(n.payload)));
    await client.connect();
    try {
      // One after another: a connection runs one query at a time.
      await listen(client, CHANNELS);
      // The second holder of this daemon's generation (sql/functions/claim.sql): a blip of
      // the partition connection alone does not make our claims look dead.
      if (this.opts.generation !== undefined) await holdGeneration(client, this.opts.generation);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    this.client = client;
    this.connected = true;
    this.scheduleCheck();
  }

  private dispatch(channel: string, payload: unknown): void {
    if (channel === CHANNEL) {
      this.lastNotificationAt = new Date();
      if (isPayload(payload)) this.handlers.onNotification(payload);
      else this.handlers.onInvalidPayload(payload);
    } else if (channel === ERRORS_CHANNEL) {
      this.handlers.onSnapshotError(parseSnapshotError(payload));
    } else if (channel === LOST_CHANNEL) {
      const e = parseSnapshotError(payload);
      this.handlers.onLostIterations({ id: e.id, p: e.p });
    } else if (channel === AGENTS_CHANNEL) {
      if (isAgentPayload(payload)) this.handlers.onAgentChanged(payload);
      else this.handlers.onInvalidPayload(payload);
    } else if (channel === MEMBERS_CHANNEL) {
      const e = payload && typeof payload === 'object' ? (payload as { e?: unknown }).e : undefined;
      this.handlers.onMembersChanged(typeof e === 'string' ? e : null);
    }
  }

  private scheduleCheck(): void {
    this.checkTimer = setTimeout(() => void this.check(), this.opts.checkMs ?? 30_000);
    this.checkTimer.unref();
  }

  /** The connection check (a dead connection is found here at the latest) and the ownership question. */
  async check(): Promise<void> {
    const client = this.client;
    if (!client || this.closed) return;
    try {
      const unowned = await countUnownedPartitions(client);
      if (this.client === client) this.scheduleCheck();
      this.handlers.onCheck(unowned);
    } catch (error) {
      if (this.client === client) {
        client.end().catch(() => {});
        this.lost(coerceError(error));
      }
    }
  }

  /** Marks the connection lost (before anyone is told) and reconnects. */
  private lost(error: Error): void {
    if (this.closed) return;
    this.client = null;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    const was = this.connected;
    this.connected = false;
    if (was) this.handlers.onDisconnected(error);
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    try {
      for (let attempt = 1; !this.closed; attempt++) {
        try {
          await this.connect();
          if (this.closed) return;
          this.handlers.onReconnected();
          return;
        } catch {
          await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { jitter: true })));
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connected = false;
    if (this.checkTimer) clearTimeout(this.checkTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }
}
