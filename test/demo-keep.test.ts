// `npm run demo -- --keep`, run as a user runs it: inspect, backfill and
// bench work against the database it leaves running, and Ctrl-C again
// cleans up. The slowest file of the suite: it runs the quick bench.
// Starts first (about 62 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { it } from 'node:test';
import pg from 'pg';
import { ctrlC, processesMentioning, startDemo } from '../scripts/lib/demo-process.js';
import { runNode as node } from './harness/run-node.js';

it('npm run demo -- --keep: inspect, backfill and bench work against the database it leaves running; Ctrl-C again cleans up', async () => {
  const demo = startDemo(['--keep']);
  const [, dir] = await demo.waitFor(/data in ([^)]+)\)/);
  await demo.waitFor(/run planned Sofort fällig/);
  ctrlC(demo);
  const [, url] = await demo.waitFor(/Postgres left running: (\S+)/);
  try {
    // inspect, as JSON and as a table, all users and one
    const json = node(['src/cli/inspect.ts', '--json', '--url', url!]);
    assert.equal(json.status, 0, json.stderr);
    const missions = (JSON.parse(json.stdout) as { missions: { missionId: string; state: string; lastRunStatus: string | null; nextRunAt: string | null }[] }).missions;
    const byId = new Map(missions.map((m) => [m.missionId, m]));
    assert.deepEqual([...byId.keys()].sort(), ['demo-daily', 'demo-minute', 'demo-news', 'demo-night', 'demo-note', 'demo-now', 'demo-paused', 'demo-spar-1', 'demo-spar-2', 'demo-spar-3']);
    const agents = (JSON.parse(json.stdout) as { agents: { agentId: string; state: string; budget: number | null }[] }).agents;
    assert.deepEqual(agents.map((a) => [a.agentId, a.budget]).sort(), [['demo-agent-night', null], ['demo-agent-spar', 1000]]);
    assert.deepEqual((JSON.parse(json.stdout) as { syncChanges: unknown }).syncChanges, { schema: 'seed', table: 'public.sync_changes', fieldMap: 'field_timestamps', origin: false, spaceId: false }, 'inspect says which schema of sync_changes it found');
    assert.equal(byId.get('demo-now')!.lastRunStatus, 'done');
    assert.ok(Date.parse(byId.get('demo-now')!.nextRunAt!) > Date.now() + 30 * 60_000, 'rescheduled an hour ahead');
    assert.equal(byId.get('demo-paused')!.state, 'paused');
    assert.equal(byId.get('demo-paused')!.lastRunStatus, null);
    const table = node(['src/cli/inspect.ts', '--user', 'demo-user'], { SYNC_DATABASE_URL: url! });
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^sync_changes: public\.sync_changes, seed schema \(field_timestamps\)$/m);
    assert.match(table.stdout, /^user +mission +title/m);
    assert.match(table.stdout, /demo-user +demo-now +Sofort fällig +active +interval .* done /);
    assert.match(table.stdout, /10 mission\(s\)/);
    assert.match(table.stdout, /demo-user +demo-agent-spar +Sparfuchs +active +1 +1000 +\d+/);
    assert.match(table.stdout, /2 agent\(s\)/);
    assert.match(node(['src/cli/inspect.ts', '--user', 'nobody', '--url', url!]).stdout, /no missions for user nobody/);

    // backfill converges to the trigger's snapshots: nothing changes
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const snap = async () => (await c.query(`SELECT mission_id, version, record, next_run_at FROM mana_ai.mission_snapshots ORDER BY mission_id`)).rows;
    const before = await snap();
    const backfill = node(['src/cli/backfill.ts', '--quiet', '--restart'], { SYNC_DATABASE_URL: url! });
    assert.equal(backfill.status, 0, backfill.stderr);
    assert.deepEqual(await snap(), before);
    await c.end();

    // bench, quick sizes, on the demo's server (in a scratch database it drops)
    const bench = node(['scripts/bench.ts', '--quick', '--url', url!]);
    assert.equal(bench.status, 0, bench.stdout + bench.stderr);
    assert.match(bench.stdout, /== summary ==/);
    assert.match(bench.stdout, /trigger: throughput ratio with\/without +: \d/);
    assert.match(bench.stdout, /reactor: due lag over 200 missions, one every 25 ms: p50 \d+ ms, p99 \d+ ms/);
  } finally {
    ctrlC(demo);
    await demo.exited;
  }
  assert.equal(existsSync(dir!), false, 'no temporary directory left');
  assert.deepEqual(processesMentioning(dir!), [], 'no process left');
});
