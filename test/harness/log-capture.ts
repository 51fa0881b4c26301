// Suite-wide log capture for the leak check: when `npm test` sets
// MANA_AI_TEST_LOG_DIR, every test daemon's log lines are appended to a
// file there, and tests register the secrets they create (PEMs, MDKs,
// plaintexts of encrypted fields). scripts/test.ts scans all logs for all
// secrets after the run and fails the suite on any hit.

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env['MANA_AI_TEST_LOG_DIR'];

export function captureLogLine(line: string): void {
  if (dir) appendFileSync(join(dir, `logs-${process.pid}.log`), line.endsWith('\n') ? line : `${line}\n`);
}

/** Registers a value that must never appear in any log line of the suite. */
export function registerSecret(kind: string, value: string): void {
  if (dir && value.length >= 8) appendFileSync(join(dir, `secrets-${process.pid}.jsonl`), `${JSON.stringify({ kind, value })}\n`);
}
