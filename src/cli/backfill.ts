// `npm run backfill`: builds snapshots for a database whose missions
// predate the trigger. Resumable: Ctrl-C stops after the current batch and
// the next run continues at the stored cursor (`--restart` starts over).

import { parseArgs } from 'node:util';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { backfillBatch, backfillProgress, countMissionRows, resetBackfill } from '../db/sql/backfill-batch.js';

const HELP = `usage: npm run backfill -- [--batch N] [--restart] [--quiet]

Replays every agent's and mission's rows of sync_changes (app ai, tables
agents and aiMissions) in log order into mana_ai.agent_snapshots and
mana_ai.mission_snapshots, in batches of N records (default
200), each in its own short transaction. Safe while devices keep writing:
the trigger and the backfill take the same per-mission lock.

Needs SYNC_DATABASE_URL with a role that can read every user's rows (a
superuser or a BYPASSRLS role); applies pending migrations first.

  --batch N    records per transaction (default 200)
  --restart    forget the stored cursor and start from the beginning
  --quiet      no progress bar, one summary line at the end
  --help       this text`;

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '200' },
    restart: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const url = process.env['SYNC_DATABASE_URL'];
if (!url) {
  console.error('SYNC_DATABASE_URL is not set.\n\n' + HELP);
  process.exit(2);
}
const batch = Number.parseInt(values.batch!, 10);
if (!Number.isInteger(batch) || batch < 1) {
  console.error(`--batch must be a positive whole number, got ${values.batch}`);
  process.exit(2);
}

await migrate(url);
const pool = createPool({ connectionString: url, applicationName: 'mana-ai-backfill', max: 2 });
let stop = false;
process.on('SIGINT', () => {
  stop = true;
  process.stderr.write('\nstopping after this batch; run again to resume\n');
});

function bar(done: number, total: number, perSec: number): string {
  const width = 30;
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const fill = Math.round(frac * width);
  const left = perSec > 0 ? Math.max(0, (total - done) / perSec) : 0;
  return `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${total} rows  ${perSec.toFixed(0)} rows/s  ${left.toFixed(0)} s left`;
}

try {
  if (values.restart) await resetBackfill(pool);
  const total = await countMissionRows(pool);
  const before = await backfillProgress(pool);
  let done = before && !before.finished ? before.rowsDone : 0;
  if (before?.finished && !values.restart) {
    await resetBackfill(pool); // a finished run starts over: it converges again
    done = 0;
  }
  const started = Date.now();
  const startDone = done;
  let missions = 0;
  for (;;) {
    const r = await backfillBatch(pool, batch);
    done += r.rows;
    missions += r.missions;
    if (!values.quiet) {
      const perSec = (done - startDone) / Math.max(0.001, (Date.now() - started) / 1000);
      process.stderr.write(`\r${bar(done, total, perSec)}`);
    }
    if (r.finished) break;
    if (stop) {
      console.log(`\nbackfill paused: ${done} of ${total} rows; resume with npm run backfill`);
      process.exit(130);
    }
  }
  if (!values.quiet) process.stderr.write('\n');
  console.log(`backfill finished: ${missions} agents and missions, ${done - startDone} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} finally {
  await pool.end();
}
