// A TypeScript entry point run as a user runs it: `node --import tsx`, in a
// child process of its own, with the test's environment plus `env`. Every
// run has a time bound (a hung script fails the test, it never holds it).

import { spawn, spawnSync } from 'node:child_process';

export interface NodeRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

const TIMEOUT_MS = 120_000;
const argsOf = (args: string[]) => ['--import', 'tsx', ...args];

/** Runs to the end, blocking: for steps that must happen in order. */
export const runNode = (args: string[], env: Record<string, string> = {}): NodeRun =>
  spawnSync(process.execPath, argsOf(args), { encoding: 'utf8', env: { ...process.env, ...env }, timeout: TIMEOUT_MS });

/** The same, without blocking: several runs at once. */
export function runNodeAsync(args: string[], env: Record<string, string> = {}): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argsOf(args), { env: { ...process.env, ...env }, timeout: TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
