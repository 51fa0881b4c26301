// After `npm test`: every captured daemon log line against every secret a
// test registered (test/harness/log-capture.ts). Reports the kind of
// secret and the log file, never the secret itself.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LeakScan {
  lines: number;
  secrets: number;
  leaks: { kind: string; file: string }[];
}

export function scanForLeaks(dir: string): LeakScan {
  const files = readdirSync(dir);
  const secrets: { kind: string; value: string }[] = [];
  for (const f of files.filter((f) => f.startsWith('secrets-'))) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line) secrets.push(JSON.parse(line) as { kind: string; value: string });
  }
  const leaks: LeakScan['leaks'] = [];
  let lines = 0;
  for (const f of files.filter((f) => f.startsWith('logs-'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    lines += text.split('\n').length - 1;
    // JSON logs escape newlines and quotes; look for the raw and the JSON-escaped form.
    for (const s of secrets) {
      if (text.includes(s.value) || text.includes(JSON.stringify(s.value).slice(1, -1))) leaks.push({ kind: s.kind, file: f });
    }
  }
  return { lines, secrets: secrets.length, leaks };
}
