// `npm run check:demo`: the demo's promise, checked end to end in about
// 75 s: the due-at-once mission planned within 10 s of start, the
// one-minute mission planned again about a minute after its first run, and
// Ctrl-C (SIGINT to the process group, as a terminal sends it) leaving no
// process and no temporary directory. Prints the figures; exits 1 on a miss.

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ctrlC, processesMentioning, startDemo } from './lib/demo-process.js';

const { values } = parseArgs({ options: { help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(`usage: npm run check:demo

Runs \`npm run demo\` (built-in LLM stand-in) and checks: the due-at-once
mission is planned within 10 s of start; the every-minute mission is planned
again about a minute after its first run; Ctrl-C leaves no process and no
temporary directory. Takes about 75 s.`);
  process.exit(0);
}

const t0 = Date.now();
const demo = startDemo([]);
const results: [string, boolean][] = [];
try {
  const [, dir] = await demo.waitFor(/data in ([^)]+)\)/);
  await demo.waitFor(/run planned Sofort fällig/);
  const firstPlan = (Date.now() - t0) / 1000;
  results.push([`due-at-once mission planned ${firstPlan.toFixed(1)} s after start (target <= 10 s)`, firstPlan <= 10]);
  await demo.waitFor(/run planned Jede Minute/);
  const m1 = Date.now();
  const deadline = setTimeout(() => ctrlC(demo), 120_000);
  const countMinute = () => demo.lines.filter((l) => /run planned Jede Minute/.test(l)).length;
  await new Promise<void>((resolve) => {
    const iv = setInterval(() => {
      if (countMinute() >= 2) {
        clearInterval(iv);
        resolve();
      }
    }, 200);
    void demo.exited.then(() => {
      clearInterval(iv);
      resolve();
    });
  });
  clearTimeout(deadline);
  const gap = (Date.now() - m1) / 1000;
  results.push([`every-minute mission planned again ${gap.toFixed(1)} s after its first run (target 60 s, within the 10 ms wheel and one run)`, countMinute() >= 2 && gap >= 59 && gap <= 65]);
  ctrlC(demo);
  const code = await demo.exited;
  results.push([`Ctrl-C: exit code ${code}`, code === 0]);
  results.push([`temporary directory ${dir} removed`, !existsSync(dir!)]);
  const left = processesMentioning(dir!);
  results.push([`processes left: ${left.length}`, left.length === 0]);
} catch (error) {
  results.push([`demo failed: ${(error as Error).message}`, false]);
  ctrlC(demo);
}
for (const [line, ok] of results) console.log(`${ok ? 'ok  ' : 'MISS'} ${line}`);
process.exit(results.every(([, ok]) => ok) ? 0 : 1);
