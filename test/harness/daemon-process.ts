// The real daemon as its own process (src/main, as transpiled for the test
// run, or through tsx when a test runs from its sources), for the tests
// that kill it: SIGKILL cannot be simulated in-process. Log lines
// (JSON) are parsed as they come; tests wait on them, not on time.

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SERVICE_KEY } from './daemon.js';
import { captureLogLine } from './log-capture.js';

const FROM_SOURCES = import.meta.url.endsWith('.ts');

export type LogLine = Record<string, unknown> & { msg?: string };

export interface DaemonProcess {
  name: string;
  child: ChildProcess;
  lines: LogLine[];
  events: EventEmitter;
  port: number;
  exited: Promise<number | null>;
  waitForLog(pred: (l: LogLine) => boolean): Promise<LogLine>;
  kill(signal: NodeJS.Signals): void;
}

export function spawnDaemon(name: string, databaseUrl: string, llmUrl: string, env: Record<string, string> = {}): Promise<DaemonProcess> {
  const main = fileURLToPath(new URL(`../../src/main${FROM_SOURCES ? '.ts' : '.js'}`, import.meta.url));
  const child = spawn(process.execPath, [...(FROM_SOURCES ? ['--import', 'tsx'] : []), main], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      SYNC_DATABASE_URL: databaseUrl,
      MANA_LLM_URL: llmUrl,
      MANA_SERVICE_KEY: SERVICE_KEY,
      MANA_AI_WORKER_ID: name,
      MANA_AI_LOG_LEVEL: 'info',
      MANA_AI_LLM_RETRY_BASE_MS: '5',
      ...env,
    },
  });
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  createInterface({ input: child.stdout! }).on('line', (raw) => {
    captureLogLine(raw);
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      line = { msg: raw };
    }
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
    events.emit('line', line);
  });
  createInterface({ input: child.stderr! }).on('line', (raw) => {
    captureLogLine(raw);
    lines.push({ msg: `stderr: ${raw}` });
  });
  const waitForLog = (pred: (l: LogLine) => boolean) => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolve, reject) => {
      waiters.push({ pred, resolve });
      void exited.then((code) => reject(new Error(`${name} exited (${code}) while waited on:\n${lines.map((l) => JSON.stringify(l)).join('\n').slice(-3000)}`)));
    });
  };
  return waitForLog((l) => l.msg === 'mana-ai started').then((started) => ({
    name,
    child,
    lines,
    events,
    port: Number(started['port']),
    exited,
    waitForLog,
    kill: (signal: NodeJS.Signals) => void child.kill(signal),
  }));
}
