// The README's first command and the operator scripts, run as a user runs
// them (child processes, a real terminal's Ctrl-C = SIGINT to the whole
// process group): the demo plans its due-at-once mission, Ctrl-C leaves no
// process and no directory; with --keep, inspect, backfill and bench work
// against the database it leaves running. Every script answers --help.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import pg from 'pg';
import { ctrlC, processesMentioning, startDemo } from '../scripts/lib/demo-process.js';

const node = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });

it('npm run demo: prints its database URL first, can be inspected while it runs, plans the due-at-once mission; Ctrl-C leaves no process and no temporary directory', async () => {
  const demo = startDemo([]);
  const [, zone] = await demo.waitFor(/all times on this screen are (\S+) time/);
  const [, dir] = await demo.waitFor(/data in ([^)]+)\)/);
  assert.ok(existsSync(dir!), 'the data directory exists while running');
  const [, url] = await demo.waitFor(/database URL: (\S+)/);
  await demo.waitFor(/psql '\S+' -c 'SELECT \* FROM mana_ai.mission_schedule'/);
  await demo.waitFor(/npm run inspect -- --url '\S+'/);
  await demo.waitFor(/built-in LLM stand-in/);
  await demo.waitFor(/run planned Sofort fällig .*„Vorschlag/);
  // the encrypted note through a v2 grant (issue 29): its audit row and what the planner saw
  await demo.waitFor(/grant v2 +Notiz lesen +audit row: notes\/demo-note-1 ok: stored as enc:2:/);
  await demo.waitFor(/grant v2 +Notiz lesen +the planner saw the note decrypted: „Einkaufsliste; Milch, Haferflocken und Äpfel für die Woche“/);
  // news research through the mana-search stand-in (issue 31)
  await demo.waitFor(/research +Nachrichten +news for „Energiewende“: ok, 3 sources from mana-search/);
  const index = (re: RegExp) => demo.lines.findIndex((l) => re.test(l));
  assert.ok(index(/database URL:/) < index(/run start/), 'the URL is printed before the first run');
  assert.equal(demo.lines.filter((l) => / times on this screen are /.test(l)).length, 1, 'the zone is named once');
  // the "daily at 9" mission's next run is 09:00 in the zone on screen
  const [, daily] = await demo.waitFor(/scheduled +Täglich um 9 +next run (.+)$/);
  assert.match(daily!, /^\d\d\.\d\d\.\d\d, 09:00:00$/, `next run ${daily} in ${zone}`);
  // inspection while the demo is still running
  const live = node(['src/cli/inspect.ts', '--json', '--url', url!]);
  assert.equal(live.status, 0, live.stderr);
  assert.equal(demo.child.exitCode, null, 'the demo is still running');
  const liveMissions = (JSON.parse(live.stdout) as { missions: { missionId: string; nextRunAt: string | null }[] }).missions;
  assert.equal(liveMissions.length, 10, 'eight missions, the one reading an encrypted note and the one researching news');
  const dailyAt = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .format(new Date(liveMissions.find((m) => m.missionId === 'demo-daily')!.nextRunAt!));
  assert.equal(dailyAt, '09:00', 'the snapshot agrees');
  // The agents: Sparfuchs's third mission waits for budget and says until when; Nachtschicht waits while paused, then runs.
  await demo.waitFor(/waits +Nachtschicht +its agent is paused/);
  await demo.waitFor(/waits +Sparfuchs 3 +its agent used 1200 of 1000 tokens in the last 24 h; may run again \d/);
  await demo.waitFor(/run planned Nachtschicht/);
  ctrlC(demo);
  assert.equal(await demo.exited, 0, demo.lines.join('\n'));
  assert.ok(!demo.lines.some((l) => /run \w+ +Sparfuchs 3/.test(l)), 'the over-budget mission did not run');
  assert.ok(demo.lines.some((l) => l.includes('temporary data removed')));
  assert.equal(existsSync(dir!), false, 'no temporary directory left');
  assert.deepEqual(processesMentioning(dir!), [], 'no process left');
  assert.ok(!demo.lines.some((l) => /run \w+ +Pausiert/.test(l)), 'the paused mission never ran');
  assert.ok(demo.lines.some((l) => /scheduled +Pausiert +next run never/.test(l)), 'the paused mission is known, with no next run');
});

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

it('every operator script answers --help with its usage', () => {
  for (const script of ['scripts/demo.ts', 'src/cli/inspect.ts', 'src/cli/backfill.ts', 'src/cli/migrate.ts', 'scripts/bench.ts', 'scripts/bench-trigger.ts', 'scripts/bench-trigger-variants.ts', 'scripts/bench-reactor.ts', 'scripts/bench-planner.ts', 'scripts/chaos.ts', 'scripts/check-demo.ts', 'scripts/mutations.ts']) {
    const r = node([script, '--help']);
    assert.equal(r.status, 0, `${script}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: npm run /, script);
  }
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  for (const name of ['demo', 'inspect', 'backfill', 'migrate', 'bench', 'bench:trigger', 'bench:trigger-variants', 'bench:reactor', 'bench:planner', 'chaos', 'check:demo', 'mutations']) assert.ok(pkg.scripts[name], `npm run ${name} exists`);
});
