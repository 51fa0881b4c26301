// `npm run bench`: runs every benchmark script in turn and prints their
// figures, then the figure lines again as one summary. Each bench runs in
// its own process (fresh heap, its own scratch database).

import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

const HELP = `usage: npm run bench -- [--quick] [--url URL]

Runs scripts/bench-trigger.ts, scripts/bench-reactor.ts and scripts/bench-planner.ts and prints their
figures (docs/performance.md says which figure meets which target).
  --quick    small sizes (about a minute); a smoke run, not for the docs
  --url URL  a PostgreSQL server to use (a scratch database is created on it
             and dropped at the end), e.g. the URL \`npm run demo -- --keep\`
             prints; default: an embedded PostgreSQL per bench
  --help     this text`;

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, url: { type: 'string' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const benches: { name: string; file: string; args: string[] }[] = [
  { name: 'trigger', file: 'scripts/bench-trigger.ts', args: values.quick ? ['--rows', '2000', '--rounds', '3', '--bulk-rows', '5000'] : [] },
  { name: 'reactor', file: 'scripts/bench-reactor.ts', args: values.quick ? ['--quick'] : [] },
  { name: 'planner', file: 'scripts/bench-planner.ts', args: values.quick ? ['--plans', '20000', '--requests', '20'] : [] },
];
const env = { ...process.env, ...(values.url ? { BENCH_DATABASE_URL: values.url } : {}) };
const summary: string[] = [];
let failed = 0;
for (const b of benches) {
  console.log(`\n== bench ${b.name} ==`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', b.file, ...b.args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8');
    let buf = '';
    child.stdout.on('data', (chunk: string) => {
      process.stdout.write(chunk);
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (/\d/.test(line) && !line.startsWith('>')) summary.push(`${b.name}: ${line.trim()}`);
      }
    });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    failed++;
    summary.push(`${b.name}: FAILED (exit ${code})`);
  }
}
console.log('\n== summary ==');
for (const line of summary) console.log(line);
process.exit(failed ? 1 : 0);
