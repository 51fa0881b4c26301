// Starts the real daemon in-process against a test database and a test
// LLM, with its logs captured (tests assert on them; nothing is printed).

import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { startDaemon, type Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import type { RunEvent } from '../../src/reactor/reactor.js';
import { captureLogLine } from './log-capture.js';

export const SERVICE_KEY = 'test-service-key-0123456789';

export interface TestDaemon extends Daemon {
  logs: string[];
  events: RunEvent[];
  /** Resolves with the first run-finished event matching `pred` (also one already seen). */
  waitForRun(pred: (e: RunEvent) => boolean): Promise<RunEvent>;
}

export async function startTestDaemon(databaseUrl: string, llmUrl: string, env: Record<string, string> = {}): Promise<TestDaemon> {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      captureLogLine(String(chunk));
      cb();
    },
  });
  const config = loadConfig({
    PORT: '0',
    SYNC_DATABASE_URL: databaseUrl,
    MANA_LLM_URL: llmUrl,
    MANA_SERVICE_KEY: SERVICE_KEY,
    MANA_AI_LLM_RETRY_BASE_MS: '5',
    MANA_AI_LLM_TIMEOUT_MS: '5000',
    MANA_AI_SHUTDOWN_GRACE_MS: '2000',
    MANA_AI_LOG_LEVEL: 'debug',
    MANA_AI_TIMEZONE: 'Europe/Berlin',
    // a run given back is tried again after 0.2-0.4 s (5-10 s in production)
    MANA_AI_RUN_RETRY_BASE_MS: '400',
    ...env,
  });
  const log = createLogger({ level: config.logLevel, destination: sink });
  const daemon = await startDaemon(config, log);
  const events: RunEvent[] = [];
  const waiters: { pred: (e: RunEvent) => boolean; resolve: (e: RunEvent) => void }[] = [];
  daemon.reactor?.on('run-finished', (e: RunEvent) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  return Object.assign(daemon, {
    logs,
    events,
    waitForRun(pred: (e: RunEvent) => boolean) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise<RunEvent>((resolve) => waiters.push({ pred, resolve }));
    },
  });
}

/** The finished run of a mission (also one already seen), with this outcome when one is given, or a failure naming it after `timeoutMs`. */
export function runOf(d: TestDaemon, missionId: string, timeoutMs = 30_000, outcome?: RunEvent['outcome']): Promise<RunEvent> {
  return Promise.race([
    d.waitForRun((e) => e.missionId === missionId && (outcome === undefined || e.outcome === outcome)),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no run of ${missionId}${outcome ? ` ended ${outcome}` : ''} within ${timeoutMs} ms`)), timeoutMs).unref()),
  ]);
}

/** Resolves with Date.now() at the next 'run-started' of a mission. */
export function runStarted(d: TestDaemon, missionId: string): Promise<number> {
  return new Promise((resolve) => {
    const on = (e: { missionId: string }) => {
      if (e.missionId !== missionId) return;
      d.reactor!.off('run-started', on);
      resolve(Date.now());
    };
    d.reactor!.on('run-started', on);
  });
}

/** Resolves when `check` holds; re-checks on every `event` any of the emitters sends; fails after `timeoutMs` naming the event. */
export function until(emitters: NodeJS.EventEmitter | NodeJS.EventEmitter[], event: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const list = Array.isArray(emitters) ? emitters : [emitters];
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      done = true;
      clearTimeout(timer);
      for (const e of list) e.off(event, test);
      if (err) reject(err);
      else resolve();
    };
    const test = async () => {
      if (!done && (await check())) finish();
    };
    const timer = setTimeout(() => finish(new Error(`no '${event}' made the condition hold within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    for (const e of list) e.on(event, test);
    void test();
  });
}
