// The reactor's events and the emitter they go out on. Tests, the demo, the
// benches and the reactor's own parts (ownership, dispatcher) observe a run
// through them, so two things are fixed here:
// - every event's payload is typed in one map, and `on`/`once`/`off`/`emit`
//   check event names and payloads against it;
// - emitting never lets a listener's exception (or an async listener's
//   rejection) into the code that emitted. Node's EventEmitter throws the
//   first listener error at the emit call and skips the listeners after it:
//   a throwing 'fired' listener would keep the run from being admitted, and
//   a throwing 'run-finished' listener would send a run already written
//   back down the failure path. Here each listener is called on its own; what
//   it throws is handed to `onListenerError` (logged and counted by the
//   owner) and the next listener runs.
//
// It must never drop or reorder listeners and never swallow an error
// silently. It has no 'error' event semantics: nothing here emits 'error'.

import { EventEmitter } from 'node:events';
import type { RepairOutcome } from '../db/sql/snapshot-repair.js';
import type { RunEvent, RunStartedEvent } from '../run/execute-run.js';
import type { RestoreOutcome } from '../write-back/restore-iterations.js';
import type { AgentDecision } from './agent-gates.js';
import type { AgentPayload } from './listener.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import { coerceError } from '../coerce-error.js';

/** event name -> the arguments its listeners get; only the names it lists can be listened to or emitted */
export type EventMap<E> = { [K in keyof E]: unknown[] };

/** What the reactor and its dispatcher emit. */
export interface ReactorEvents {
  /** a wheel entry fired: the mission's run is handed to the dispatcher */
  fired: [sid: number, dueMs: number];
  /** a notification (re)armed or dropped a mission's next run (dueMs null: no next run) */
  scheduled: [{ sid: number; dueMs: number | null; version: number }];
  /** the LISTEN connection went down (false) or came back (true) */
  listener: [connected: boolean];
  /** a full or partial schedule load finished */
  resynced: [{ reason: string; missions: number }];
  /** an agent's gate fields changed */
  agent: [AgentPayload];
  /** the trigger recorded a fold error (its mana_ai.snapshot_errors id) */
  'snapshot-error': [id: number | null];
  /** a transient fold error was repaired, or could not be */
  'snapshot-repaired': [{ id: number; outcome: RepairOutcome | 'error' }];
  /** a recorded iteration loss was repaired (or found nothing to do) */
  'iterations-restored': [{ lossId: number; outcome: RestoreOutcome | 'error'; missionId?: string; restored: unknown[] }];
  'run-started': [RunStartedEvent];
  'run-finished': [RunEvent];
  /** an agent's gate held a due run back in memory */
  'agent-held': [{ sid: number; dueMs: number; decision: AgentDecision }];
  /** a run waits for its agent's token budget */
  'budget-wait': [{ sid: number; dueMs: number; untilMs: number | null; used: number | null; budget: number | null }];
  /** no run in flight and none queued */
  idle: [];
}

type Listener<E extends EventMap<E>, K extends keyof E> = (...args: E[K]) => void;

/** An EventEmitter whose event names and payloads are typed by E and whose emit never throws a listener's error. */
export class GuardedEmitter<E extends EventMap<E>> extends EventEmitter {
  constructor(private readonly onListenerError: (event: string, error: unknown) => void) {
    super();
  }

  override on<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override once<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    return super.once(event, listener as (...args: unknown[]) => void);
  }

  override off<K extends keyof E & string>(event: K, listener: Listener<E, K>): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }

  /** Calls every listener of `event` in order; one that throws or rejects is reported, the rest still run. */
  override emit<K extends keyof E & string>(event: K, ...args: E[K]): boolean {
    // rawListeners: a `once` listener's wrapper, which removes it before calling it
    const listeners = this.rawListeners(event) as ((...a: unknown[]) => unknown)[];
    for (const listener of listeners) {
      try {
        const result = listener.apply(this, args);
        if (result instanceof Promise) result.catch((error: unknown) => this.report(event, error));
      } catch (error) {
        this.report(event, error);
      }
    }
    return listeners.length > 0;
  }

  private report(event: string, error: unknown): void {
    try {
      this.onListenerError(event, error);
    } catch {
      // the reporter itself failed (a broken logger): nothing left to tell
    }
  }
}

/** What the daemon's emitters do with a listener's error: an error line with the event, and a count. */
export function listenerErrorReporter(log: Logger, metrics: Pick<Metrics, 'eventListenerErrors'>): (event: string, error: unknown) => void {
  return (event, error) => {
    metrics.eventListenerErrors.inc({ event });
    const thrown = coerceError(error);
    log.error({ event, err: `${thrown.name}: ${thrown.message}` }, 'a listener of this event threw; the daemon went on without it');
  };
}
