// The LISTEN connection (pg-listen). It reconnects by itself with backoff
// and re-LISTENs; each re-established connection is reported so the
// reactor can resync, since notifications sent while it was down are lost.
// Its only query while idle is pg-listen's periodic connection check.

import type pg from 'pg';
import * as pgListen from 'pg-listen';
import type { Options, Subscriber } from 'pg-listen';
import { retryDelayMs } from './backoff.js';
import { MEMBERS_CHANNEL } from './ownership.js';

// pg-listen is CommonJS with `exports.default`; Node's ESM loader hands us
// module.exports, tsx may hand us the function. Accept both.
type CreateSubscriber = (config: pg.ClientConfig, options: Options) => Subscriber;
const mod = pgListen as unknown as { default: CreateSubscriber | { default: CreateSubscriber } };
const createSubscriber: CreateSubscriber = typeof mod.default === 'function' ? mod.default : mod.default.default;

export const CHANNEL = 'mana_ai_missions';
/** The trigger's fold errors (sql/007): payload { id } of a mana_ai.snapshot_errors row. */
export const ERRORS_CHANNEL = 'mana_ai_snapshot_errors';

export interface SchedulePayload {
  s: number;
  v: number;
  p: number;
  d: number | null;
  /** set when a claim was given back: re-arm even at the same version */
  r?: number;
}

export interface ListenerHandlers {
  onNotification(payload: SchedulePayload): void;
  onReconnected(): void;
  onDisconnected(error: Error): void;
  onInvalidPayload(raw: unknown): void;
  onSnapshotError(errorId: number | null): void;
  /** A daemon joined, left or released partitions (ownership.ts). */
  onMembersChanged(): void;
}

function isPayload(x: unknown): x is SchedulePayload {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return Number.isSafeInteger(o['s']) && Number.isSafeInteger(o['v']) && Number.isSafeInteger(o['p']) && (o['d'] === null || Number.isFinite(o['d']));
}

export class ScheduleListener {
  private readonly subscriber: Subscriber;
  private connectedOnce = false;
  connected = false;
  lastNotificationAt: Date | null = null;

  constructor(connectionString: string, private readonly handlers: ListenerHandlers, opts: { healthCheckMs?: number } = {}) {
    this.subscriber = createSubscriber(
      { connectionString, application_name: 'mana-ai-listener' },
      {
        paranoidChecking: opts.healthCheckMs ?? 30_000,
        retryLimit: Number.POSITIVE_INFINITY,
        retryTimeout: 0, // never give up: the daemon stays up while Postgres is away
        retryInterval: (attempt: number) => retryDelayMs(attempt, { jitter: true }),
        parse: (raw: string) => {
          try {
            return JSON.parse(raw);
          } catch {
            return raw;
          }
        },
      },
    );
    this.subscriber.notifications.on(CHANNEL, (payload: unknown) => {
      this.lastNotificationAt = new Date();
      if (isPayload(payload)) handlers.onNotification(payload);
      else handlers.onInvalidPayload(payload);
    });
    this.subscriber.notifications.on(ERRORS_CHANNEL, (payload: unknown) => {
      const id = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>)['id'] : null;
      handlers.onSnapshotError(Number.isSafeInteger(id) ? (id as number) : null);
    });
    this.subscriber.notifications.on(MEMBERS_CHANNEL, () => handlers.onMembersChanged());
    this.subscriber.events.on('error', (error) => {
      this.connected = false;
      handlers.onDisconnected(error);
    });
    this.subscriber.events.on('reconnect', () => {
      const was = this.connected;
      this.connected = false;
      if (was) handlers.onDisconnected(new Error('LISTEN connection lost'));
    });
    this.subscriber.events.on('connected', () => {
      this.connected = true;
      if (this.connectedOnce) handlers.onReconnected();
      this.connectedOnce = true;
    });
  }

  async start(): Promise<void> {
    await this.subscriber.connect();
    await this.subscriber.listenTo(CHANNEL);
    await this.subscriber.listenTo(ERRORS_CHANNEL);
    await this.subscriber.listenTo(MEMBERS_CHANNEL);
    this.connected = true;
    this.connectedOnce = true;
  }

  async close(): Promise<void> {
    this.connected = false;
    await this.subscriber.close().catch(() => {});
  }
}
