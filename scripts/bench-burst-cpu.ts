// `npm run bench:burst-cpu`: where a burst's CPU goes (issue 30). One burst
// of N missions due at once (as bench:vs-graphile's), the daemon in this
// process at concurrency 4, the LLM stand-in in its own process; prints
// the burst's rate, the CPU each process spent on it (the daemon by
// process.cpuUsage, PostgreSQL's and the stand-in's processes from
// /proc/<pid>/stat, so Linux only), per run, and where the database's
// time went by function (pg_stat_user_functions, track_functions = all).
// `--stub-llm` answers inside the daemon's process instead (no HTTP): what
// the runner costs without the request. `--yardsticks` also measures, in
// this process, the LLM client alone (2,000 requests of our prompt at
// concurrency 4) and graphile-worker 0.18 (a devDependency) working off
// 2,000 jobs whose handler sends the same request: their CPU per unit.
// `--warm W` works a burst of W off first, so the measured one runs on
// code V8 has compiled and optimised (the first burst's JIT shows as
// the daemon's CPU in V8's threads).
// `--batching-floor` works the same burst off with the batching floor
// instead (scripts/lib/batching-floor.ts; the daemon stays idle): what the
// contract's work per unit costs each process when everything batchable
// is batched and no runner's own work is done.
// A diagnostic, not a target.

import { execSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool as HttpPool } from 'undici';
import { loadConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { LlmClient } from '../src/planner/llm-client.js';
import type { RunEvent } from '../src/reactor/reactor.js';
import { machine, openBenchDatabase } from './lib/bench-db.js';
import { startLlmStandIn } from './lib/llm-stand-in.js';
import { benchPrompt, benchPromptPoster, insertBurst } from './lib/burst.js';
import { startBatchingFloor } from './lib/batching-floor.js';
import { createRuntimeRole } from './lib/sync-database.js';

const { values } = parseArgs({ options: { burst: { type: 'string', default: '2000' }, 'stub-llm': { type: 'boolean', default: false }, yardsticks: { type: 'boolean', default: false }, 'batching-floor': { type: 'boolean', default: false }, warm: { type: 'string', default: '0' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log('usage: npm run bench:burst-cpu -- [--burst N] [--warm W] [--stub-llm] [--yardsticks] [--batching-floor]');
  process.exit(0);
}
const N = Number(values.burst);
const WARM = Number(values.warm);

/** CPU seconds of the processes whose command line matches `pattern` (utime + stime, in clock ticks of 10 ms). */
const cpuOf = (pattern: string): number =>
  Number(execSync(`for p in $(pgrep -f '${pattern}'); do cat /proc/$p/stat 2>/dev/null; done | awk '{s+=$14+$15} END {print s/100}'`).toString()) || 0;

if (values['stub-llm']) {
  const plan = JSON.stringify({ summary: 'Ein Schritt', steps: [{ summary: 'Aufgabe anlegen', toolName: 'create_task', params: { title: 'Nächster Schritt' }, rationale: 'Damit es vorangeht' }] });
  LlmClient.prototype.complete = async () => ({ content: '```json\n' + plan + '\n```', totalTokens: 100, toolCalls: [], message: null });
}

const db = await openBenchDatabase();
const daemonUrl = await createRuntimeRole(db.url);
await db.pool.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET track_functions = 'all'`);
const llm = await startLlmStandIn();
const daemon = await startDaemon(
  loadConfig({ PORT: '0', SYNC_DATABASE_URL: daemonUrl, MANA_LLM_URL: llm.url, MANA_AI_CONCURRENCY: '4', MANA_AI_WORKER_ID: 'bench-burst-cpu' }),
  createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
);
let stopped = false;
try {
  if (values['batching-floor']) await batchingFloor();
  else await daemonBurst();
  if (values.yardsticks) await yardsticks();
} finally {
  if (!stopped) await daemon.stop();
  await llm.close();
  await db.close();
}
process.exit(0);

/** One burst of N worked off by the daemon (after a warm-up burst with --warm): CPU of each process per run, the database's time by function. */
async function daemonBurst(): Promise<void> {
  // a warm-up burst first when asked: what follows then measures code V8 has compiled and optimised
  if (WARM > 0) {
    const warm = burstDone('warm-', WARM);
    await insertBurst(db.pool, 'warm-', WARM, new Date(Date.now() - 1000).toISOString());
    await warm;
    await settleStats();
  }
  const outcomes: Record<string, number> = {};
  const done = burstDone('burst-', N, outcomes);
  const pg0 = cpuOf('postgres');
  const llm0 = cpuOf('llm-stand-in');
  const node0 = process.cpuUsage();
  const t0 = performance.now();
  await insertBurst(db.pool, 'burst-', N, new Date(Date.now() - 1000).toISOString());
  const inserted = performance.now();
  await done;
  const wall = performance.now() - t0;
  const node = process.cpuUsage(node0);
  const pgCpu = cpuOf('postgres') - pg0;
  const llmCpu = cpuOf('llm-stand-in') - llm0;
  const per = (s: number) => `${((s * 1000) / N).toFixed(2)} ms per run`;
  console.log(machine());
  console.log(`burst of ${N.toLocaleString('en')} missions, concurrency 4${values['stub-llm'] ? ', LLM answered in-process (no HTTP)' : ''}${WARM > 0 ? `, after a warm-up burst of ${WARM.toLocaleString('en')}` : ''}: ${Math.round(N / (wall / 1000))} per s (the insert ${Math.round(inserted - t0)} ms of ${Math.round(wall)} ms); outcomes ${JSON.stringify(outcomes)}`);
  console.log(`  daemon      ${((node.user + node.system) / 1e6).toFixed(2)} s CPU (${per((node.user + node.system) / 1e6)}; system ${(node.system / 1e6).toFixed(2)} s)`);
  console.log(`  PostgreSQL  ${pgCpu.toFixed(2)} s CPU (${per(pgCpu)}, the insert's trigger included)`);
  console.log(`  LLM stand-in ${llmCpu.toFixed(2)} s CPU (${per(llmCpu)})`);
  // a backend reports its function counts when it exits: the daemon's connections end first
  await daemon.stop();
  stopped = true;
  await printFunctionStats();
}

/** Resolves once `n` runs of missions `prefix`… finished, counting their outcomes into `outcomes`. */
function burstDone(prefix: string, n: number, outcomes: Record<string, number> = {}): Promise<void> {
  let finished = 0;
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out: ${finished} of ${n} runs finished`)), 300_000);
    const listener = (e: RunEvent) => {
      if (!e.missionId?.startsWith(prefix)) return;
      outcomes[e.outcome] = (outcomes[e.outcome] ?? 0) + 1;
      if (++finished === n) {
        clearTimeout(t);
        daemon.reactor!.off('run-finished', listener);
        resolve();
      }
    };
    daemon.reactor!.on('run-finished', listener);
  });
}

/** The warm-up's function counts out of the way: backends report them once idle for a second; then reset. */
async function settleStats(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1_500));
  await db.pool.query('SELECT pg_stat_reset()');
}

/** Where the database's time went by function, for the backends that ended (ms per unit). */
async function printFunctionStats(): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  const { rows } = await db.pool.query<{ funcname: string; calls: string; total: number; self: number }>(
    `SELECT funcname, calls, total_time AS total, self_time AS self FROM pg_stat_user_functions ORDER BY total_time DESC LIMIT 14`);
  console.log('  the database by function (ms per run: total, self; calls):');
  for (const r of rows) console.log(`    ${r.funcname.padEnd(34)} ${(r.total / N).toFixed(3).padStart(7)} ${(r.self / N).toFixed(3).padStart(7)}  ${r.calls}`);
}

/** The same burst worked off by the batching floor in this process (the daemon idle): CPU of each process per unit, the database's time by function. */
async function batchingFloor(): Promise<void> {
  const http = new HttpPool(llm.url, { connections: 16, keepAliveTimeout: 30_000 });
  const runtime = new pg.Pool({ connectionString: daemonUrl, max: 4 });
  const floor = await startBatchingFloor(db.url, runtime, benchPromptPoster(http));
  try {
    await floor.burst('warm-', WARM > 0 ? WARM : 200);
    await settleStats();
    const pg0 = cpuOf('postgres');
    const llm0 = cpuOf('llm-stand-in');
    const node0 = process.cpuUsage();
    const rate = await floor.burst('burst-', N);
    const node = process.cpuUsage(node0);
    const per = (s: number) => `${((s * 1000) / N).toFixed(2)} ms per unit`;
    console.log(machine());
    console.log(`batching floor, burst of ${N.toLocaleString('en')}, concurrency 4: ${Math.round(rate)} per s`);
    console.log(`  this process ${per((node.user + node.system) / 1e6)}`);
    console.log(`  PostgreSQL   ${per(cpuOf('postgres') - pg0)} (the insert's trigger included)`);
    console.log(`  LLM stand-in ${per(cpuOf('llm-stand-in') - llm0)}`);
  } finally {
    await floor.close();
    await runtime.end();
    await http.close();
  }
  // a backend reports its function counts when it exits: the floor's connections ended above
  await printFunctionStats();
}

/** The LLM client alone, and graphile-worker whose handler sends the same request: CPU of this process per unit. */
async function yardsticks(): Promise<void> {
  const messages = benchPrompt('burst-y');
  const client = new LlmClient({ baseUrl: llm.url, model: 'bench', temperature: 0.2, timeoutMs: 60_000, maxAttempts: 1, retryBaseMs: 500, serviceKey: undefined });
  const signal = new AbortController().signal;
  const cpuPer = async (n: number, work: () => Promise<void>) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await work();
    const c = process.cpuUsage(c0);
    return { cpuMs: (c.user + c.system) / 1000 / n, rate: n / ((performance.now() - t0) / 1000) };
  };
  const requests = (n: number) => async () => {
    let left = n;
    await Promise.all([0, 1, 2, 3].map(async () => {
      while (left-- > 0) await client.complete(messages, signal, {});
    }));
  };
  await requests(200)();
  const alone = await cpuPer(N, requests(N));
  console.log(`  yardstick: our LLM client alone, ${N} requests at concurrency 4: ${alone.cpuMs.toFixed(2)} ms CPU per request, ${Math.round(alone.rate)} per s`);
  const { Logger, run } = await import('graphile-worker');
  const body = JSON.stringify({ model: 'bench', temperature: 0.2, messages });
  const http = new HttpPool(llm.url, { connections: 16, keepAliveTimeout: 30_000 });
  let jobs = 0;
  let allDone: () => void = () => {};
  const runner = await run({
    connectionString: db.url, concurrency: 4, noHandleSignals: true, pollInterval: 2000, logger: new Logger(() => () => {}),
    taskList: {
      request: async () => {
        const res = await http.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });
        await res.body.text();
        if (++jobs === N) allDone();
      },
    },
  });
  try {
    for (const round of [1, 2]) {
      jobs = 0;
      const finished = new Promise<void>((r) => (allDone = r));
      const g = await cpuPer(N, async () => {
        await db.pool.query(`SELECT graphile_worker.add_jobs(array_agg(ROW('request', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec)) FROM generate_series(1, $1::int) g`, [N]);
        await finished;
      });
      console.log(`  yardstick: graphile-worker 0.18 + the same request, ${N} jobs at concurrency 4 (round ${round}): ${g.cpuMs.toFixed(2)} ms CPU of its process per job, ${Math.round(g.rate)} per s`);
    }
  } finally {
    await runner.stop();
    await http.close();
    await client.close();
  }
}
