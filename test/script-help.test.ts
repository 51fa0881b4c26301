// Every operator script answers --help with its usage, and every one of
// them is an npm script. The scripts start as a user starts them (a child
// process each), all at once: each spends its time loading its imports.
// Starts first (about 14 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { runNodeAsync } from './harness/run-node.js';

it('every operator script answers --help with its usage', async () => {
  const scripts = ['scripts/demo.ts', 'src/cli/inspect.ts', 'src/cli/backfill.ts', 'src/cli/migrate.ts', 'scripts/bench.ts', 'scripts/bench-trigger.ts', 'scripts/bench-trigger-variants.ts', 'scripts/bench-reactor.ts', 'scripts/bench-planner.ts', 'scripts/chaos.ts', 'scripts/check-demo.ts', 'scripts/mutations.ts'];
  const runs = await Promise.all(scripts.map((script) => runNodeAsync([script, '--help'])));
  runs.forEach((r, i) => {
    assert.equal(r.status, 0, `${scripts[i]}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: npm run /, scripts[i]);
  });
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  for (const name of ['demo', 'inspect', 'backfill', 'migrate', 'bench', 'bench:trigger', 'bench:trigger-variants', 'bench:reactor', 'bench:planner', 'chaos', 'check:demo', 'mutations']) assert.ok(pkg.scripts[name], `npm run ${name} exists`);
});
