// The liveness oracle's short form (issue 18): three daemon processes as
// the runtime role for 12 s of backends terminated mid-transaction,
// lock_timeout set and cleared under held snapshot locks, agents deleted
// and re-created, paused and resumed, due missions moved, daemons joining
// and stopping, while a writer edits missions; then judged from the
// database alone (scripts/lib/liveness-oracle.ts). `npm run chaos` runs the
// long form.
// Starts first (about 23 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { RUNTIME_ROLE, createTestDatabase, type TestDb } from './harness/db.js';
import { runLivenessOracle } from '../scripts/lib/liveness-oracle.js';

let db: TestDb;
before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  await db?.drop();
});

it('no mission is stranded, no daemon dies, one watch backend per daemon, no due time asked twice', async (t) => {
  const lines: string[] = [];
  const r = await runLivenessOracle({
    adminUrl: db.url, daemonUrl: db.daemonUrl, runtimeRole: RUNTIME_ROLE,
    seconds: 12, daemons: 3, missions: 30, agents: 6, seed: 18, log: (l) => lines.push(l),
  });
  for (const l of r.lines) t.diagnostic(l);
  t.diagnostic(JSON.stringify(r.stats));
  assert.ok(r.stats['terminated']! > 0 && r.stats['agentsRecreated']! > 0 && r.stats['moved']! > 0, `the chaos happened: ${JSON.stringify(r.stats)}`);
  assert.ok(r.ok, `${r.lines.join('\n')}\n${lines.slice(-20).join('\n')}`);
});
