// `npm run inspect`: the schedule as the database sees it, for one user or
// all: next run, state, cadence, last run outcome and error, fold errors.
// A table for people, `--json` for machines. Read-only; ships in the image
// (`node dist/cli/inspect.js`) so it works next to a deployed daemon.

import { parseArgs } from 'node:util';
import pg from 'pg';
import { inspectAgents, type AgentRow } from '../db/sql/inspect-agents.js';
import { inspectSchedule, type ScheduleRow } from '../db/sql/inspect-schedule.js';
import { readSyncSchema, schemaName } from '../db/sql/sync-schema.js';

const HELP = `usage: npm run inspect -- [--user ID] [--json] [--limit N] [--url URL]

Prints every mission's schedule from mana_ai.mission_schedule: user,
mission, title, state, cadence, next run (and how overdue), iterations,
the last run's status, due time and error, and the trigger's fold errors
for that mission; then every agent from mana_ai.agent_budget: state,
concurrency, daily budget, tokens used in the last 24 h, runs in flight,
and when it may run next (blocked agents first).

  --user ID    only this user's missions
  --json       one JSON document ({ missions: [...], agents: [...] }) instead of tables
  --limit N    at most N missions (default 500), soonest next run first
  --url URL    database URL (default: SYNC_DATABASE_URL)
  --help       this text`;

const { values } = parseArgs({
  options: {
    user: { type: 'string' },
    json: { type: 'boolean', default: false },
    limit: { type: 'string', default: '500' },
    url: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const url = values.url ?? process.env['SYNC_DATABASE_URL'];
if (!url) {
  console.error('No database: pass --url or set SYNC_DATABASE_URL.\n\n' + HELP);
  process.exit(2);
}
const limit = Number(values.limit);
if (!Number.isInteger(limit) || limit < 1) {
  console.error(`--limit must be a positive integer, got "${values.limit}"`);
  process.exit(2);
}

const pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'mana-ai-inspect' });
try {
  const rows = await inspectSchedule(pool, { userId: values.user, limit });
  const agents = await inspectAgents(pool, { userId: values.user, limit });
  const sync = await readSyncSchema(pool);
  const syncChanges = sync ? { schema: schemaName(sync), table: sync.table, fieldMap: sync.fieldMap, origin: sync.origin, spaceId: sync.spaceId } : null;
  if (values.json) console.log(JSON.stringify({ syncChanges, missions: rows, agents }, null, 2));
  else {
    const cols = sync ? [sync.fieldMap, ...(sync.origin ? ['origin'] : []), ...(sync.spaceId ? ['space_id'] : [])].join(', ') : '';
    console.log(`${sync ? `sync_changes: ${sync.table}, ${schemaName(sync)} schema (${cols})` : 'sync_changes: not recorded (run npm run migrate)'}\n\n${renderTable(rows)}\n\n${renderAgents(agents)}`);
  }
} catch (error) {
  const e = error as Error & { code?: string };
  console.error(e.code === '42P01' ? 'mana_ai.mission_schedule does not exist: run `npm run migrate` (or start the daemon) first.' : `inspect failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}

function renderTable(rows: ScheduleRow[]): string {
  if (rows.length === 0) return values.user ? `no missions for user ${values.user}` : 'no missions';
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const when = (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 19) : '-');
  const head = ['user', 'mission', 'title', 'state', 'cadence', 'next run (UTC)', 'overdue', 'iter', 'last run', 'last error', 'fold err'];
  const body = rows.map((r) => [
    cut(r.userId, 16),
    cut(r.missionId, 24),
    cut(r.title ?? '', 24),
    r.deleted ? 'deleted' : r.parked ? `${r.state ?? '?'}, parked` : (r.state ?? '?'),
    r.cadence ?? '?',
    when(r.nextRunAt),
    r.overdueSeconds === null ? '' : `${r.overdueSeconds}s`,
    String(r.iterations),
    r.lastRunStatus ? `${r.lastRunStatus} ${when(r.lastRunDueAt)}` : '-',
    cut(r.lastRunError ?? '', 30),
    r.snapshotErrors ? String(r.snapshotErrors) : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), `${rows.length} mission(s)`].join('\n');
}

function renderAgents(rows: AgentRow[]): string {
  if (rows.length === 0) return 'no agents';
  const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const head = ['user', 'agent', 'name', 'state', 'max', 'budget', 'used 24h', 'in flight', 'missions', 'may run (UTC)'];
  const body = rows.map((r) => [
    cut(r.userId, 16),
    cut(r.agentId, 24),
    cut(r.name ?? '', 20),
    r.state,
    String(r.maxConcurrent),
    r.budget === null ? '-' : String(r.budget),
    `${r.used24h}${r.overshoot ? ` (+${r.overshoot})` : ''}`,
    String(r.runsInFlight),
    String(r.missions),
    r.mayRunAt ? r.mayRunAt.replace('T', ' ').slice(0, 19) : 'when the user changes it',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), `${rows.length} agent(s)`].join('\n');
}
