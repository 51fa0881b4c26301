// The README's first command, run as a user runs it (a child process, a
// real terminal's Ctrl-C = SIGINT to the whole process group): the demo
// plans its due-at-once mission and can be inspected while it runs; Ctrl-C
// leaves no process and no directory. (demo-keep.test.ts: with --keep;
// script-help.test.ts: every script's --help. Three files, so the test
// runner runs them beside each other.)
// Starts first (about 14 s of npm test; scripts/test.ts).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { it } from 'node:test';
import { ctrlC, processesMentioning, startDemo } from '../scripts/lib/demo-process.js';
import { runNode as node } from './harness/run-node.js';

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
