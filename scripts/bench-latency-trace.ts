// `npm run bench:latency-trace`: where the time from a mission's commit to
// its LLM request goes (issue 30's "a trace of one run, per step"),
// reproducibly, on the daemon's own span boundaries (src/tracing/): the
// daemon runs in this process with a tracer that records each span's start
// and end on this process's clock (no SDK, no export), beside three marks
// taken here: the commit returning, a second LISTEN session's
// notification, and the request's arrival at the LLM stand-in (its own
// process, as bench:vs-graphile's; wall clocks with sub-ms precision, as
// there). One unit at a time, as bench:vs-graphile's latency measure. A
// diagnostic: prints each mark's p50 and mean, and each step's p50; then
// the claim alone, from a client in a loop, beside `SELECT $1`.

import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { trace, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { loadConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { CHANNEL } from '../src/reactor/listener.js';
import type { RunEvent } from '../src/reactor/reactor.js';
import type { Tracing } from '../src/tracing/tracing.js';
import { machine, openBenchDatabase, percentile } from './lib/bench-db.js';
import { benchMission, insertBurst } from './lib/burst.js';
import { startLlmStandIn } from './lib/llm-stand-in.js';
import { createRuntimeRole } from './lib/sync-database.js';

const { values } = parseArgs({ options: { units: { type: 'string', default: '60' }, warmup: { type: 'string', default: '5' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log('usage: npm run bench:latency-trace -- [--units N] [--warmup W]');
  process.exit(0);
}
const UNITS = Number(values.units);
const WARMUP = Number(values.warmup);

const wall = () => performance.timeOrigin + performance.now();

/** A span as recorded here: name, parent, attributes, start and end (wall ms). */
interface Recorded { name: string; parent: Recorded | null; attributes: Record<string, unknown>; start: number; end: number | null }
const recorded: Recorded[] = [];
let nextId = 1;
/** A tracer that records, in this process, the spans the daemon makes; its span ids only tie children to parents. */
const recordingTracer: Tracer = {
  startSpan(name, options, context) {
    const parentSpan = context ? trace.getSpan(context) : undefined;
    const r: Recorded = { name, parent: (parentSpan as (Span & { rec?: Recorded }) | undefined)?.rec ?? null, attributes: { ...options?.attributes }, start: wall(), end: null };
    recorded.push(r);
    const ctx: SpanContext = { traceId: '0'.repeat(31) + '1', spanId: (nextId++).toString(16).padStart(16, '0'), traceFlags: 1 };
    const span: Span & { rec: Recorded } = {
      rec: r,
      spanContext: () => ctx,
      setAttribute(k, v) { r.attributes[k] = v; return span; },
      setAttributes(a) { Object.assign(r.attributes, a); return span; },
      addEvent() { return span; },
      addLink() { return span; },
      addLinks() { return span; },
      setStatus() { return span; },
      updateName() { return span; },
      end() { r.end ??= wall(); },
      isRecording: () => true,
      recordException() {},
    };
    return span;
  },
  startActiveSpan() {
    throw new Error('the daemon passes parents explicitly; startActiveSpan is not used');
  },
};
const tracing: Tracing = { enabled: true, tracer: recordingTracer, inject: () => {}, shutdown: async () => {} };

const db = await openBenchDatabase();
const daemonUrl = await createRuntimeRole(db.url);
const llm = await startLlmStandIn();
const daemon = await startDaemon(
  loadConfig({
    PORT: '0', SYNC_DATABASE_URL: daemonUrl, MANA_LLM_URL: llm.url, MANA_AI_CONCURRENCY: '4', MANA_AI_WORKER_ID: 'bench-trace',
  }),
  createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  { tracing },
);
const finished = new Map<string, () => void>();
daemon.reactor!.on('run-finished', (e: RunEvent) => finished.get(e.missionId ?? '')?.());

// a second session listening on the daemon's channel: when the notification reaches a client
const listener = new pg.Client({ connectionString: db.url });
await listener.connect();
await listener.query(`LISTEN ${CHANNEL}`);
let notifiedAt = 0;
// the unit's own notification: its snapshot's first version (a write-back's comes later, at a later one)
listener.on('notification', (n) => {
  if (notifiedAt === 0 && (JSON.parse(n.payload ?? '{}') as { v?: number }).v === 1) notifiedAt = wall();
});

const client = new pg.Client({ connectionString: db.url });
await client.connect();

const within = <T>(p: Promise<T>, what: string, timeoutMs = 30_000) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });

/** One unit: commit, then wait for its request's arrival and its run's end. */
async function once(id: string): Promise<{ id: string; commit: number; notified: number; arrival: number }> {
  const done = new Promise<void>((r) => finished.set(id, r));
  const user = `trace-user-${id}`;
  await client.query('BEGIN');
  await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
  await client.query(
    `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id) VALUES ('ai', 'aiMissions', $1, $2, 'insert', $3, '{}', 'bench')`,
    [id, user, JSON.stringify(benchMission(id, new Date(Date.now() - 1000).toISOString()))],
  );
  notifiedAt = 0;
  await client.query('COMMIT');
  const commit = wall();
  const arrival = await within(llm.arrival(id), `the request of ${id}`);
  await within(done, `the run of ${id}`);
  finished.delete(id);
  return { id, commit, notified: notifiedAt, arrival };
}

try {
  for (let i = 0; i < WARMUP; i++) await once(`warm-${i}`);
  const units: Awaited<ReturnType<typeof once>>[] = [];
  for (let i = 0; i < UNITS; i++) units.push(await once(`lat-${i}`));

  const runOf = (id: string) => {
    const r = recorded.find((s) => s.name === 'mission.run' && s.attributes['mission.id'] === id);
    if (!r) throw new Error(`no mission.run span for ${id}`);
    return r;
  };
  const child = (run: Recorded, name: string) => {
    const s = recorded.find((x) => x.parent === run && x.name === name);
    if (!s || s.end === null) throw new Error(`the run of ${String(run.attributes['mission.id'])} has no ended ${name} span`);
    return s;
  };
  // marks after the commit returned, ms
  const marks: [string, number[]][] = [
    ['notification reaches a listening client', []],
    ['run leaves the queue (mission.run starts)', []],
    ['claim answered (mission.claim ends)', []],
    ['inputs resolved (mission.resolve_inputs ends)', []],
    ['request sent (llm.request starts)', []],
    ['request arrives at the stand-in', []],
  ];
  for (const u of units) {
    const run = runOf(u.id)!;
    const at = [u.notified, run.start, child(run, 'mission.claim').end!, child(run, 'mission.resolve_inputs').end!, child(run, 'llm.request').start, u.arrival];
    if (u.notified === 0) throw new Error(`the listening client saw no notification of ${u.id}`);
    at.forEach((t, k) => marks[k]![1].push(t - u.commit));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(machine());
  console.log(`commit → LLM request, ${UNITS} units one at a time (after ${WARMUP} to warm up), ms after the commit returned:`);
  console.log(`  ${'mark'.padEnd(48)} ${'p50'.padStart(7)} ${'mean'.padStart(7)}   step (p50 of the differences)`);
  let prev: number[] | null = null;
  for (const [name, xs] of marks) {
    const step = prev ? percentile(xs.map((x, i) => x - prev![i]!), 50).toFixed(3) : '';
    console.log(`  ${name.padEnd(48)} ${percentile(xs, 50).toFixed(3).padStart(7)} ${mean(xs).toFixed(3).padStart(7)}   ${step}`);
    prev = xs;
  }

  // The claim alone, for scale: claim_run from a client of the runtime role
  // in a loop (hot, no idle pause), on missions due in an hour (the daemon
  // leaves them to their time), beside `SELECT $1` on the same connection.
  const dueIso = new Date(Date.now() + 3_600_000).toISOString();
  await insertBurst(client, 'alone-', 220, dueIso);
  const { rows: sids } = await client.query<{ sid: string }>(`SELECT sid FROM mana_ai.mission_snapshots WHERE mission_id LIKE 'alone-%' ORDER BY sid`);
  const runtime = new pg.Client({ connectionString: daemonUrl });
  await runtime.connect();
  try {
    const claimMs: number[] = [];
    const selectMs: number[] = [];
    for (const [i, { sid }] of sids.entries()) {
      const t = performance.now();
      const { rows } = await runtime.query({
        name: 'claim', text: `SELECT outcome FROM mana_ai.claim_run($1, $2::timestamptz, 'bench-alone', interval '10 minutes', interval '0', NULL, NULL, NULL)`, values: [sid, dueIso],
      });
      if (rows[0]?.outcome !== 'claimed') throw new Error(`claim of ${sid}: ${rows[0]?.outcome}`);
      if (i >= 20) claimMs.push(performance.now() - t);
      const u = performance.now();
      await runtime.query({ name: 'one', text: 'SELECT $1::int', values: [1] });
      if (i >= 20) selectMs.push(performance.now() - u);
    }
    console.log(`the claim alone, ${claimMs.length} from a client in a loop: p50 ${percentile(claimMs, 50).toFixed(3)} ms (SELECT $1: p50 ${percentile(selectMs, 50).toFixed(3)} ms)`);
  } finally {
    await runtime.end();
  }
} finally {
  await daemon.stop();
  await listener.end();
  await client.end();
  await llm.close();
  await db.close();
}
process.exit(0);
