// `npm run bench:vs-graphile`: mana-ai beside graphile-worker (issue 30),
// on one embedded PostgreSQL in one run, the two measured in alternation,
// each at concurrency 4:
//  1. latency: a unit due now committed → its work starts. Ours: the
//     mission row's COMMIT returns → the LLM request arrives at the
//     stand-in; theirs: add_job's COMMIT returns → the task handler runs.
//     One unit at a time, each finished before the next is added.
//  2. burst: 2,000 units due at once, committed in one statement, the LLM
//     answering at once with a one-step plan; until every one is done
//     (ours: written back; theirs: the handler finished and the jobs table
//     is empty), as units per second.
// Beside the two measures, the same two with graphile-worker's
// handler doing what our run does after its claim: one POST of the same
// prompt to the LLM stand-in, answered at once ("graphile-worker + the same
// request"): latency to the request's arrival, burst until every answer is
// read. They show what the request to another process costs either side.
// And the floor of any runner that must claim before it asks the LLM: a
// LISTEN session that, on a notification, makes one round trip on an idle
// pool connection (`SELECT $1`, no work) and then sends the same request
// ("claim-first floor"): commit of the NOTIFY → the request's arrival;
// and the same without the round trip ("no-round-trip floor"), the least
// a runner can do whose notification already carries everything the
// request needs and whose claim was made by the committing transaction.
// And the burst's floor for any runner that does the contract's work per
// unit with graphile-worker's own queue ("contract floor"): in one
// statement, 2,000 mission rows committed into mana-sync's table (the
// trigger folds, schedules and announces each, as it does ours; due a day
// ahead, so our idle daemon never runs them) and one graphile-worker job
// per row; each job sends our prompt to the stand-in, then writes one
// iteration and the next due time back as mana-sync's table needs it (one
// row as the runtime role, scoped to the mission's user, folded by the
// trigger). No claim of ours, no charge, no batching: what is left is
// queue, request and the two rows.
// Beside it, the same floor with its mission rows committed (and folded)
// before the clock starts: what the missions' arrival costs of it. Ours
// cannot leave that out: the burst's units are those rows. And the
// batching floor (scripts/lib/batching-floor.ts): the same work per unit
// with everything batchable batched and no runner of its own.
// Both run in this process (the daemon as the runtime role, as in
// production; graphile-worker as the superuser that installed its
// schema), both idle while the other is measured; the LLM stand-in runs in
// a process of its own, as mana-llm does (scripts/lib/llm-stand-in.ts). graphile-worker is a
// devDependency used only here. Prints each distribution and the ratios.

import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Logger, run as runGraphile, type Runner } from 'graphile-worker';
import { Pool as HttpPool } from 'undici';
import { loadConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import type { RunEvent } from '../src/reactor/reactor.js';
import { machine, openBenchDatabase, percentile } from './lib/bench-db.js';
import { createRuntimeRole } from './lib/sync-database.js';
import { startLlmStandIn } from './lib/llm-stand-in.js';
import { BURST_USER_SQL, assertWrittenBack, benchMission, benchPromptPoster, benchWriteBack, floorDueIso, insertBurst, insertBurstSql } from './lib/burst.js';
import { startBatchingFloor } from './lib/batching-floor.js';

const { values } = parseArgs({ options: { units: { type: 'string', default: '60' }, burst: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '2' }, warmup: { type: 'string', default: '5' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(`usage: npm run bench:vs-graphile -- [--units N] [--burst B] [--rounds R] [--warmup W]

Starts an embedded PostgreSQL (or BENCH_DATABASE_URL's server), the mana-ai
daemon and a graphile-worker runner (both concurrency 4), then measures, in
alternation: N units (default 60) one at a time, commit → work starts; and
R rounds (default 2) of a burst of B units (default 2,000) due at once.
Before the latency units, W units of each (default 5) warm both up.`);
  process.exit(0);
}
const UNITS = Number(values.units);
const BURST = Number(values.burst);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = 4;

const db = await openBenchDatabase();
const daemonUrl = await createRuntimeRole(db.url);

// The LLM stand-in, in a process of its own as mana-llm is: answers at once with a one-step plan, reports arrivals.
const llm = await startLlmStandIn();
const llmUrl = llm.url;
const wall = () => performance.timeOrigin + performance.now();

const quiet = new Writable({ write: (_c, _e, cb) => cb() });
const daemon = await startDaemon(
  loadConfig({ PORT: '0', SYNC_DATABASE_URL: daemonUrl, MANA_LLM_URL: llmUrl, MANA_AI_CONCURRENCY: String(CONCURRENCY), MANA_AI_WORKER_ID: 'bench-vs' }),
  createLogger({ level: 'silent', destination: quiet }),
);
const finished = new Map<string, (e: RunEvent) => void>();
let burstDone = 0;
let onBurstDone: (() => void) | null = null;
daemon.reactor!.on('run-finished', (e: RunEvent) => {
  const id = e.missionId ?? '';
  finished.get(id)?.(e);
  if (id.startsWith('burst-') && ++burstDone === BURST) onBurstDone?.();
});

// graphile-worker: one task that notes when it started; one that sends our prompt to the stand-in first.
const started = new Map<string, number>();
const jobDone = new Map<string, () => void>();
const http = new HttpPool(llmUrl, { connections: 16, keepAliveTimeout: 30_000 });
/** The contract floor's write-backs: the runtime role, as our daemon writes. */
const writePool = new pg.Pool({ connectionString: daemonUrl, max: CONCURRENCY });
/** Our prompt for a mission titled `id` sent to the stand-in, its answer read: what graphile-worker's 'bench-http' handler and the floors do after their round trip. */
const postPrompt = benchPromptPoster(http);
const graphile: Runner = await runGraphile({
  connectionString: db.url, concurrency: CONCURRENCY, noHandleSignals: true, pollInterval: 2000,
  // silent, as our daemon is here: neither pays for log lines
  logger: new Logger(() => () => {}),
  taskList: {
    bench: async (payload) => {
      const id = (payload as { id: string }).id;
      started.set(id, performance.now());
      jobDone.get(id)?.();
    },
    'bench-http': async (payload) => {
      const id = (payload as { id: string }).id;
      await postPrompt(id);
      jobDone.get(id)?.();
    },
    'bench-contract': async (payload) => {
      const { id, user } = payload as { id: string; user: string };
      await postPrompt(id);
      await benchWriteBack(writePool, id, user);
      jobDone.get(id)?.();
    },
  },
});

// The claim-first floor: notification → one round trip doing nothing → the same request.
const floorListen = new pg.Client({ connectionString: db.url });
await floorListen.connect();
await floorListen.query('LISTEN bench_floor');
await floorListen.query('LISTEN bench_floor0');
const floorPool = new pg.Pool({ connectionString: db.url, max: CONCURRENCY });
floorListen.on('notification', (n) => {
  const id = n.payload ?? '';
  void (async () => {
    if (n.channel === 'bench_floor') await floorPool.query({ name: 'floor', text: 'SELECT $1::text', values: [id] });
    await postPrompt(id);
    jobDone.get(id)?.();
  })().catch((error: unknown) => console.error('floor unit failed', error));
});

const client = new pg.Client({ connectionString: db.url });
await client.connect();
const iso = (ms: number) => new Date(ms).toISOString();
const mission = (id: string) => JSON.stringify(benchMission(id, iso(Date.now() - 1000)));

const waitFor = <T>(register: (resolve: (v: T) => void) => void, ms: number, what: string) =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });

async function oursOnce(id: string): Promise<number> {
  const done = waitFor<RunEvent>((r) => finished.set(id, r), 30_000, `the run of ${id}`);
  await client.query('BEGIN');
  await client.query(`SELECT set_config('app.current_user_id', $1, true)`, [`lat-user-${id}`]);
  await client.query(`INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id) VALUES ('ai', 'aiMissions', $1, $2, 'insert', $3, '{}', 'bench')`, [id, `lat-user-${id}`, mission(id)]);
  await client.query('COMMIT');
  const t0 = wall();
  const at = await llm.arrival(id);
  await done;
  finished.delete(id);
  return at - t0;
}

async function theirsOnce(id: string): Promise<number> {
  const done = waitFor<void>((r) => jobDone.set(id, r), 30_000, `the job ${id}`);
  await client.query(`SELECT graphile_worker.add_job('bench', json_build_object('id', $1::text))`, [id]);
  const t0 = performance.now();
  await done;
  jobDone.delete(id);
  return started.get(id)! - t0;
}

/** The statement `commit` returns → unit `id`'s request arrives at the stand-in; waits until its answer is read (jobDone). */
async function untilArrival(id: string, commit: () => Promise<unknown>): Promise<number> {
  const done = waitFor<void>((r) => jobDone.set(id, r), 30_000, `the unit ${id}`);
  await commit();
  const t0 = wall();
  const at = await llm.arrival(id);
  await done;
  jobDone.delete(id);
  return at - t0;
}

const theirsHttpOnce = (id: string) => untilArrival(id, () => client.query(`SELECT graphile_worker.add_job('bench-http', json_build_object('id', $1::text))`, [id]));
const floorOnce = (id: string) => untilArrival(id, () => client.query(`SELECT pg_notify('bench_floor', $1)`, [id]));
const floor0Once = (id: string) => untilArrival(id, () => client.query(`SELECT pg_notify('bench_floor0', $1)`, [id]));

async function oursBurst(round: number): Promise<number> {
  burstDone = 0;
  const done = waitFor<void>((r) => (onBurstDone = r), 300_000, 'the burst');
  const t0 = performance.now();
  await insertBurst(client, `burst-${round}-`, BURST, iso(Date.now() - 1000));
  await done;
  return BURST / ((performance.now() - t0) / 1000);
}

/** A burst's kind: graphile-worker's bare jobs, + the request, the contract floor, and that floor with its mission rows committed before the clock starts. */
type BurstKind = 'bench' | 'bench-http' | 'bench-contract' | 'contract-no-arrival';

/** The statement that adds a burst's jobs, ids `prefix`1 … `prefix`BURST (the contract floor's with their mission rows). */
function addBurst(kind: BurstKind, prefix: string): Promise<unknown> {
  if (kind === 'bench' || kind === 'bench-http') {
    return client.query(
      `SELECT graphile_worker.add_jobs(array_agg(ROW($1::text, json_build_object('id', $2::text || g), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
         FROM generate_series(1, $3::int) g`,
      [kind, prefix, BURST],
    );
  }
  if (kind === 'contract-no-arrival') {
    return client.query(
      `SELECT graphile_worker.add_jobs(array_agg(ROW('bench-contract', json_build_object('id', $1::text || g, 'user', ${BURST_USER_SQL}), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
         FROM generate_series(1, $2::int) g`,
      [prefix, BURST],
    );
  }
  return client.query(
    `WITH m AS (${insertBurstSql()} RETURNING record_id, user_id)
     SELECT graphile_worker.add_jobs(array_agg(ROW('bench-contract', json_build_object('id', m.record_id, 'user', m.user_id), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec))
       FROM m`,
    [prefix, floorDueIso(), BURST],
  );
}

/** BURST jobs of `kind` added in one statement, until every handler finished and the jobs table is empty. */
async function theirsBurst(round: number, kind: BurstKind = 'bench'): Promise<number> {
  const prefix = { bench: `burst-${round}-`, 'bench-http': `burst-h${round}-`, 'bench-contract': `burst-c${round}-`, 'contract-no-arrival': `burst-n${round}-` }[kind];
  // without the arrival: the mission rows are committed (and folded) before the clock starts
  if (kind === 'contract-no-arrival') await client.query(insertBurstSql(), [prefix, floorDueIso(), BURST]);
  let n = 0;
  const t0 = performance.now();
  const done = waitFor<void>((r) => {
    for (let g = 1; g <= BURST; g++) jobDone.set(`${prefix}${g}`, () => { if (++n === BURST) r(); });
  }, 300_000, `their burst (${kind})`);
  await addBurst(kind, prefix);
  await done;
  // the handler finished and the jobs table is empty
  for (;;) {
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM graphile_worker.jobs`);
    if (rows[0].n === 0) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const rate = BURST / ((performance.now() - t0) / 1000);
  for (let g = 1; g <= BURST; g++) jobDone.delete(`${prefix}${g}`);
  if (kind === 'bench-contract' || kind === 'contract-no-arrival') await assertWrittenBack(client, prefix, BURST, 'contract floor');
  return rate;
}

// The batching floor (scripts/lib/batching-floor.ts): the same work per unit, batched, no runner of its own.
const batching = await startBatchingFloor(db.url, writePool, postPrompt, CONCURRENCY);

const stats = (xs: number[]) => {
  const avg = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { avg, p50: percentile(xs, 50), p99: percentile(xs, 99) };
};
const fmt = (s: { avg: number; p50: number; p99: number }) => `avg ${s.avg.toFixed(2)} ms, p50 ${s.p50.toFixed(2)}, p99 ${s.p99.toFixed(2)}`;

try {
  // warm both: connections, JIT, the LLM connection
  for (let i = 0; i < Number(values.warmup); i++) {
    await oursOnce(`warm-${i}`);
    await theirsOnce(`warm-${i}`);
    await theirsHttpOnce(`warm-h${i}`);
    await floorOnce(`warm-f${i}`);
    await floor0Once(`warm-z${i}`);
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  const theirsHttp: number[] = [];
  const floor: number[] = [];
  const floor0: number[] = [];
  for (let i = 0; i < UNITS; i++) {
    // rotate who goes first, so none always follows another's work
    const turns = [
      async () => ours.push(await oursOnce(`lat-${i}`)),
      async () => theirs.push(await theirsOnce(`lat-${i}`)),
      async () => theirsHttp.push(await theirsHttpOnce(`lat-h${i}`)),
      async () => floor.push(await floorOnce(`lat-f${i}`)),
      async () => floor0.push(await floor0Once(`lat-z${i}`)),
    ];
    for (let k = 0; k < turns.length; k++) await turns[(i + k) % turns.length]!();
  }
  const o = stats(ours);
  const t = stats(theirs);
  const th = stats(theirsHttp);
  const fl = stats(floor);
  const fz = stats(floor0);
  console.log(machine());
  console.log(`commit → work starts, ${UNITS} units each, one at a time:`);
  console.log(`  graphile-worker 0.18 (add_job → handler):  ${fmt(t)}`);
  console.log(`  mana-ai (mission row → LLM request):       ${fmt(o)}`);
  console.log(`  ratio (ours / theirs, avg): ${(o.avg / t.avg).toFixed(2)} (target <= 1.0)`);
  console.log(`  graphile-worker + the same request (add_job → request arrives): ${fmt(th)}; ours / that: ${(o.avg / th.avg).toFixed(2)}`);
  console.log(`  claim-first floor (NOTIFY → one SELECT $1 → the same request arrives): ${fmt(fl)}; ours / that: ${(o.avg / fl.avg).toFixed(2)}; that / graphile-worker: ${(fl.avg / t.avg).toFixed(2)}`);
  console.log(`  no-round-trip floor (NOTIFY → the same request arrives): ${fmt(fz)}; that / graphile-worker: ${(fz.avg / t.avg).toFixed(2)}`);
  const oursRate: number[] = [];
  const theirsRate: number[] = [];
  const theirsHttpRate: number[] = [];
  const contractRate: number[] = [];
  const noArrivalRate: number[] = [];
  const batchRate: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    theirsRate.push(await theirsBurst(r));
    oursRate.push(await oursBurst(r));
    theirsHttpRate.push(await theirsBurst(r, 'bench-http'));
    contractRate.push(await theirsBurst(r, 'bench-contract'));
    noArrivalRate.push(await theirsBurst(r, 'contract-no-arrival'));
    batchRate.push(await batching.burst(`burst-b${r}-`, BURST));
  }
  const best = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`burst of ${BURST.toLocaleString('en')} units due at once, concurrency ${CONCURRENCY}, ${ROUNDS} rounds each, alternating:`);
  console.log(`  graphile-worker 0.18: ${best(theirsRate)} per s`);
  console.log(`  mana-ai:              ${best(oursRate)} per s`);
  console.log(`  ratio (ours / theirs, mean): ${(mean(oursRate) / mean(theirsRate)).toFixed(2)} (target >= 0.5)`);
  console.log(`  graphile-worker + the same request: ${best(theirsHttpRate)} per s; ours / that: ${(mean(oursRate) / mean(theirsHttpRate)).toFixed(2)}`);
  console.log(`  contract floor (graphile-worker + mission rows in, the same request, one write-back row each): ${best(contractRate)} per s; ours / that: ${(mean(oursRate) / mean(contractRate)).toFixed(2)}; that / graphile-worker: ${(mean(contractRate) / mean(theirsRate)).toFixed(2)}`);
  console.log(`  the same floor, its mission rows committed before the clock starts: ${best(noArrivalRate)} per s; that / graphile-worker: ${(mean(noArrivalRate) / mean(theirsRate)).toFixed(2)}`);
  console.log(`  batching floor (the same work per unit, no claim, one read, answers written back together): ${best(batchRate)} per s; ours / that: ${(mean(oursRate) / mean(batchRate)).toFixed(2)}; that / graphile-worker: ${(mean(batchRate) / mean(theirsRate)).toFixed(2)}`);
} finally {
  await graphile.stop();
  await floorListen.end();
  await batching.close();
  await floorPool.end();
  await writePool.end();
  await http.close();
  await daemon.stop();
  await client.end();
  await llm.close();
  await db.close();
}
process.exit(0);
