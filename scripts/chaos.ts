// `npm run chaos`: two or three daemon processes against one database for a
// fixed time, killed and restarted at random (SIGKILL and SIGTERM),
// Postgres restarted once, LISTEN connections killed, while a writer keeps
// changing missions. Then it checks the invariants and prints them:
//   1. each (mission, due time) planned at most once;
//   2. each due time that passed while a daemon was alive got planned
//      (after a settle period nothing is left overdue, no claim is stuck);
//   3. no sync_changes row lost (every write the writer saw committed is
//      there; every finished run has its iteration row);
//   4. runs that started more than 5 s after their due time, with the
//      chaos event that explains each;
//   5. no iteration lost (issue 28): the writer also plays stale devices
//      that push a mission's whole `iterations` array as they last pulled
//      it; every iteration id that ever reached the server is in its
//      mission's final snapshot, once.
// Exits 1 if an invariant fails. Prints due-lag figures too.
// Then the liveness oracle (scripts/lib/liveness-oracle.ts, issue 18) runs
// on a database of its own for --oracle-seconds (default 120): backends
// terminated mid-transaction, lock_timeout, agents deleted and re-created,
// paused and resumed, due missions moved, daemons joining and stopping,
// judged from the database alone. `--only classic|oracle` runs one.

import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { spawnDaemon, type DaemonProcess } from '../test/harness/daemon-process.js';
import { startEmbeddedPostgres } from './lib/embedded-pg.js';
import { machine, percentile } from './lib/bench-db.js';
import { mulberry32 } from './lib/prng.js';
import { createRuntimeRole, createSyncDatabase } from './lib/sync-database.js';
import { runLivenessOracle } from './lib/liveness-oracle.js';

const HELP = `usage: npm run chaos -- [--minutes M] [--daemons N] [--missions K] [--seed S] [--oracle-seconds T] [--only classic|oracle]

Runs N daemons (default 3) for M minutes (default 10) against an embedded
PostgreSQL with K missions (default 300, every-minute cadence) while
killing and restarting daemons, restarting Postgres once and killing LISTEN
connections; then settles and checks the invariants. Prints a report.
Then the liveness oracle for T seconds (default 120) with N daemons.`;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    daemons: { type: 'string', default: '3' },
    missions: { type: 'string', default: '300' },
    seed: { type: 'string', default: '7' },
    'oracle-seconds': { type: 'string', default: '120' },
    only: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const MINUTES = Number(values.minutes);
const N_DAEMONS = Number(values.daemons);
const N_MISSIONS = Number(values.missions);
const prng = mulberry32(Number(values.seed));
const rand = prng.next;
const between = prng.between;
const t0 = Date.now();
const say = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}`);

// --- database and LLM stand-in
const server = await startEmbeddedPostgres();

/** The liveness oracle on a database of its own; true when every check held. */
async function oracle(): Promise<boolean> {
  const oracleUrl = await createSyncDatabase(server.url, 'oracle');
  const oracleDaemonUrl = await createRuntimeRole(oracleUrl);
  const seconds = Number(values['oracle-seconds']);
  say(`liveness oracle: ${N_DAEMONS} daemons, ${seconds} s`);
  const r = await runLivenessOracle({
    adminUrl: oracleUrl, daemonUrl: oracleDaemonUrl, runtimeRole: 'mana_ai_runtime',
    seconds, daemons: N_DAEMONS, missions: Math.min(N_MISSIONS, 200), agents: 12, seed: Number(values.seed), log: say,
  });
  console.log('');
  console.log(`liveness oracle: ${N_DAEMONS} daemon(s), ${seconds} s, seed ${values.seed}; ${machine()}`);
  for (const l of r.lines) console.log(l);
  console.log(`chaos done: ${JSON.stringify(r.stats)}`);
  return r.ok;
}
if (values.only === 'oracle') {
  const ok = await oracle();
  await server.stop();
  process.exit(ok ? 0 : 1);
}
const url = await createSyncDatabase(server.url, 'chaos');
// The daemons run as the least-privileged runtime role, as in production.
const daemonUrl = await createRuntimeRole(url);
const pool = new pg.Pool({ connectionString: url, max: 4 });
pool.on('error', () => {});
const llm = createServer((req, res) => {
  req.resume();
  req.on('end', () =>
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { content: '{"summary":"chaos","steps":[]}' } }] }));
    }, between(5, 40)),
  );
});
await new Promise<void>((r) => llm.listen(0, '127.0.0.1', r));
const llmUrl = `http://127.0.0.1:${(llm.address() as { port: number }).port}`;

// --- chaos timeline
type Event = { at: number; what: string };
const events: Event[] = [];
const note = (what: string) => {
  events.push({ at: Date.now(), what });
  say(what);
};
/** [from, to) intervals during which at least one daemon was alive */
const aliveSpans: [number, number][] = [];
let aliveSince: number | null = null;

// No short lease: a killed daemon's claims are taken over through its session (sql/functions/claim.sql).
const env = { MANA_AI_LOG_LEVEL: 'info' };
const slots: (DaemonProcess | null)[] = Array.from({ length: N_DAEMONS }, () => null);
let pgDown = false;
const trackAlive = () => {
  const alive = slots.some((d) => d !== null);
  if (alive && aliveSince === null) aliveSince = Date.now();
  if (!alive && aliveSince !== null) {
    aliveSpans.push([aliveSince, Date.now()]);
    aliveSince = null;
  }
};
async function startSlot(i: number): Promise<void> {
  for (let attempt = 0; attempt < 30 && !slots[i]; attempt++) {
    if (pgDown) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    try {
      const d = await spawnDaemon(`chaos-${i}`, daemonUrl, llmUrl, env);
      slots[i] = d;
      trackAlive();
      void d.exited.then(() => {
        if (slots[i] === d) {
          slots[i] = null;
          trackAlive();
        }
      });
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
// Interrupted: take the daemons and Postgres down with us, leave nothing behind.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    for (const d of slots) d?.kill('SIGKILL');
    void server.stop().finally(() => process.exit(130));
  });
}
await Promise.all(slots.map((_, i) => startSlot(i)));
say(`${N_DAEMONS} daemon(s) up; ${machine()}`);

// --- missions: every-minute cadence, due spread over the first minute
const missionIds: { user: string; id: string }[] = [];
for (let i = 0; i < N_MISSIONS; i++) missionIds.push({ user: `chaos-user-${i % 97}`, id: `chaos-${i}` });
const committed: string[] = [];
let writesFailed = 0;
async function write(user: string, id: string, op: 'insert' | 'update', data: Record<string, unknown>): Promise<void> {
  const c = await pool.connect().catch(() => null);
  if (!c) {
    writesFailed++;
    return;
  }
  try {
    await c.query('BEGIN');
    await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
    const stamp = new Date().toISOString();
    const fts = Object.fromEntries(Object.keys(data).map((k) => [k, stamp]));
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
       VALUES ('ai', 'aiMissions', $1, $2, $3, $4, $5, 'chaos-writer') RETURNING id`,
      [id, user, op, JSON.stringify(data), JSON.stringify(fts)],
    );
    await c.query('COMMIT');
    committed.push(rows[0]!.id); // only after COMMIT returned: a write the writer saw succeed
  } catch {
    writesFailed++;
    await c.query('ROLLBACK').catch(() => {});
  } finally {
    c.release(true);
  }
}
for (const m of missionIds) {
  const now = new Date().toISOString();
  await write(m.user, m.id, 'insert', {
    id: m.id, title: m.id, objective: 'chaos', conceptMarkdown: '', inputs: [], iterations: [], createdAt: now, updatedAt: now,
    cadence: { kind: 'interval', everyMinutes: 1 }, state: 'active', nextRunAt: new Date(Date.now() + between(2_000, 60_000)).toISOString(),
  });
}
say(`${N_MISSIONS} missions written`);

// --- the writer keeps changing missions; some writes come from stale devices
const endAt = Date.now() + MINUTES * 60_000;
let writes = 0;
let staleWrites = 0;
/** a device's view of a mission's iterations, as it last pulled them */
const views = new Map<string, unknown[]>();
async function pullView(user: string, id: string): Promise<void> {
  const { rows } = await pool
    .query<{ its: unknown[] | null }>(`SELECT record -> 'iterations' AS its FROM mana_ai.mission_snapshots WHERE user_id = $1 AND mission_id = $2`, [user, id])
    .catch(() => ({ rows: [] as { its: unknown[] | null }[] }));
  if (rows[0]?.its) views.set(`${user}/${id}`, rows[0].its);
}
const writer = (async () => {
  while (Date.now() < endAt) {
    const m = missionIds[Math.floor(rand() * missionIds.length)]!;
    const k = rand();
    if (k < 0.1) await pullView(m.user, m.id);
    else if (k < 0.2 && views.has(`${m.user}/${m.id}`)) {
      // a stale device renames the mission: the webapp pushes the whole array it has
      await write(m.user, m.id, 'update', { title: `${m.id} stale ${writes}`, inputs: [], iterations: views.get(`${m.user}/${m.id}`)! });
      staleWrites++;
    } else if (k < 0.5) await write(m.user, m.id, 'update', { title: `${m.id} ${writes}` });
    else if (k < 0.8) await write(m.user, m.id, 'update', { nextRunAt: new Date(Date.now() + between(1_000, 40_000)).toISOString() });
    else if (k < 0.9) await write(m.user, m.id, 'update', { state: 'paused' });
    else await write(m.user, m.id, 'update', { state: 'active', nextRunAt: new Date(Date.now() + between(1_000, 20_000)).toISOString() });
    writes++;
    await new Promise((r) => setTimeout(r, between(50, 250)));
  }
})();

// --- chaos
const pgRestartAt = t0 + (MINUTES * 60_000) / 2;
let pgRestarted = false;
while (Date.now() < endAt) {
  await new Promise((r) => setTimeout(r, between(10_000, 30_000)));
  if (Date.now() >= endAt) break;
  if (!pgRestarted && Date.now() >= pgRestartAt) {
    pgRestarted = true;
    note('Postgres: stop');
    pgDown = true;
    await server.pause();
    await new Promise((r) => setTimeout(r, between(5_000, 15_000)));
    await server.ensureRunning();
    pgDown = false;
    note('Postgres: back');
    continue;
  }
  const action = rand();
  const i = Math.floor(rand() * N_DAEMONS);
  const d = slots[i];
  if (action < 0.4 && d) {
    note(`SIGKILL chaos-${i}`);
    d.kill('SIGKILL');
    await d.exited;
    setTimeout(() => void startSlot(i).then(() => note(`restarted chaos-${i}`)), between(1_000, 8_000));
  } else if (action < 0.7 && d) {
    note(`SIGTERM chaos-${i}`);
    d.kill('SIGTERM');
    await d.exited;
    setTimeout(() => void startSlot(i).then(() => note(`restarted chaos-${i}`)), between(1_000, 5_000));
  } else {
    const { rowCount } = await pool
      .query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai-listener'`)
      .catch(() => ({ rowCount: 0 }));
    note(`killed ${rowCount} LISTEN connection(s)`);
  }
}
await writer;
say(`chaos over: ${writes} mission changes, ${staleWrites} of them by stale devices (${writesFailed} refused while Postgres was away)`);

// --- settle: every daemon up, nothing left overdue
await Promise.all(slots.map((s, i) => (s ? undefined : startSlot(i))));
const settleStart = Date.now();
let overdue = -1;
for (;;) {
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.due_missions WHERE overdue_by > interval '5 seconds'`);
  overdue = rows[0]!.n;
  const losses = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.lost_iterations WHERE restored_at IS NULL`)).rows[0]!.n;
  if ((overdue === 0 && losses === 0) || Date.now() - settleStart > 150_000) break;
  await new Promise((r) => setTimeout(r, 1_000));
}
for (const d of slots) d?.kill('SIGTERM');
await Promise.all(slots.map((d) => d?.exited));
trackAlive();

// --- invariants
const results: [boolean, string][] = [];
const q = async <T extends pg.QueryResultRow>(text: string, params: unknown[] = []) => (await pool.query<T>(text, params)).rows;

const dupRuns = await q<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM mana_ai.mission_runs GROUP BY mission_key, due_at HAVING count(*) > 1) x`);
const dupIterations = await q<{ n: number }>(
  `SELECT count(*)::int AS n FROM (
     SELECT 1 FROM sync_changes c WHERE c.client_id = 'mana-ai-runner'
        AND NOT EXISTS (SELECT 1 FROM mana_ai.lost_iterations l WHERE l.repair_change_id = c.id)
      GROUP BY user_id, record_id, data -> 'iterations' -> -1 ->> 'id' HAVING count(*) > 1) x`);
results.push([dupRuns[0]!.n === 0 && dupIterations[0]!.n === 0, `1. each (mission, due time) planned at most once: ${dupRuns[0]!.n} duplicate run rows, ${dupIterations[0]!.n} duplicate iterations`]);

const stuck = await q<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE status = 'running'`);
results.push([overdue === 0 && stuck[0]!.n === 0, `2. every due time planned: ${overdue} missions still overdue after settling ${((Date.now() - settleStart) / 1000).toFixed(0)} s, ${stuck[0]!.n} runs still claimed`]);

const present = await q<{ n: number }>(`SELECT count(*)::int AS n FROM sync_changes WHERE id = ANY($1::uuid[])`, [committed]);
const doneRuns = await q<{ n: number }>(`SELECT count(*)::int AS n FROM mana_ai.mission_runs WHERE status IN ('done', 'failed') AND iteration_id IS NOT NULL`);
// the runner's rows: one per finished run, and the repairs of lost iterations (5.)
const runnerRows = await q<{ n: number }>(
  `SELECT count(*)::int AS n FROM sync_changes c WHERE c.client_id = 'mana-ai-runner'
      AND NOT EXISTS (SELECT 1 FROM mana_ai.lost_iterations l WHERE l.repair_change_id = c.id)`);
results.push([
  present[0]!.n === committed.length && doneRuns[0]!.n === runnerRows[0]!.n,
  `3. no sync_changes row lost: ${present[0]!.n}/${committed.length} committed writer rows present; ${runnerRows[0]!.n} iteration rows for ${doneRuns[0]!.n} finished runs`,
]);

const runs = (
  await q<{ due: Date; started: Date; lag_ms: string; attempts: number; prev: Date | null }>(
    `SELECT due_at AS due, started_at AS started, extract(epoch FROM started_at - due_at) * 1000 AS lag_ms, attempts,
            lag(started_at) OVER (PARTITION BY mission_key ORDER BY started_at) AS prev
       FROM mana_ai.mission_runs WHERE status IN ('done', 'failed')`)
).map((r) => ({ ...r, lag_ms: Number(r.lag_ms) }));
const MIN_GAP_MS = 60_000;
const late = runs.filter((r) => r.lag_ms > 5_000);
const explain = (r: (typeof runs)[number]) => {
  const due = r.due.getTime();
  const started = r.started.getTime();
  // The hot-loop guard: no mission runs twice within MANA_AI_MIN_RUN_GAP_MS
  // (60 s), and the writer moves nextRunAt closer than that on purpose.
  if (r.prev && due - r.prev.getTime() < MIN_GAP_MS && started - r.prev.getTime() >= MIN_GAP_MS - 1_000) return 'held back by the 60 s minimum gap between runs';
  const ev = [...events].reverse().find((e) => e.at <= started && e.at >= due - 20_000);
  if (ev) return ev.what.replace(/chaos-\d+/, 'a daemon').replace(/killed \d+ LISTEN/, 'killed LISTEN');
  if (aliveSpans.some(([a, b]) => due >= b || due < a) && !aliveSpans.some(([a, b]) => due >= a && due < b)) return 'no daemon alive at the due time';
  if (r.attempts > 1) return 'claim re-run after a lease expired';
  return 'unexplained';
};
const reasons = new Map<string, number>();
for (const r of late) reasons.set(explain(r), (reasons.get(explain(r)) ?? 0) + 1);
results.push([
  !reasons.has('unexplained'),
  `4. runs started > 5 s after due: ${late.length} of ${runs.length}${late.length ? ` (${[...reasons].map(([k, v]) => `${k}: ${v}`).join('; ')})` : ''}`,
]);

const everLost = await q<{ missing: number; twice: number; ids: number; losses: number; restored: number }>(
  `WITH ever AS (
     SELECT DISTINCT c.user_id, c.record_id, it ->> 'id' AS iid
       FROM sync_changes c
      CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(c.data -> 'iterations') = 'array' THEN c.data -> 'iterations' ELSE '[]'::jsonb END) it
      WHERE c.app_id = 'ai' AND c.table_name = 'aiMissions' AND jsonb_typeof(it) = 'object' AND it ? 'id'),
   now AS (
     SELECT s.user_id, s.mission_id, it ->> 'id' AS iid, count(*) AS n
       FROM mana_ai.mission_snapshots s
      CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(s.record -> 'iterations') = 'array' THEN s.record -> 'iterations' ELSE '[]'::jsonb END) it
      WHERE NOT s.deleted AND jsonb_typeof(it) = 'object'
      GROUP BY 1, 2, 3)
   SELECT (SELECT count(*) FROM ever e JOIN mana_ai.mission_snapshots s ON s.user_id = e.user_id AND s.mission_id = e.record_id AND NOT s.deleted
            WHERE NOT EXISTS (SELECT 1 FROM now n WHERE n.user_id = e.user_id AND n.mission_id = e.record_id AND n.iid = e.iid))::int AS missing,
          (SELECT count(*) FROM now WHERE n > 1)::int AS twice,
          (SELECT count(*) FROM ever)::int AS ids,
          (SELECT count(*) FROM mana_ai.lost_iterations)::int AS losses,
          (SELECT count(*) FROM mana_ai.lost_iterations WHERE outcome = 'restored')::int AS restored`);
const lost = everLost[0]!;
results.push([
  lost.missing === 0 && lost.twice === 0,
  `5. no iteration lost: ${lost.missing} of ${lost.ids} iteration ids that reached the server missing from their live mission, ${lost.twice} present twice; ${staleWrites} stale-device writes, ${lost.losses} losses recorded, ${lost.restored} restored by a repair row`,
]);

const lags = runs.map((r) => r.lag_ms);
const calm = runs.filter((r) => !events.some((e) => e.at >= r.due.getTime() - 20_000 && e.at <= r.started.getTime())).map((r) => r.lag_ms);
console.log('');
console.log(`chaos: ${N_DAEMONS} daemon(s), ${MINUTES} min, ${N_MISSIONS} missions, seed ${values.seed}; ${events.length} chaos events; ${machine()}`);
for (const [ok, line] of results) console.log(`${ok ? 'ok  ' : 'FAIL'} ${line}`);
console.log(`due lag, all ${lags.length} runs: p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms, max ${Math.max(...lags).toFixed(0)} ms`);
console.log(`due lag, ${calm.length} runs with no chaos event between due and start: p50 ${percentile(calm, 50).toFixed(0)} ms, p99 ${percentile(calm, 99).toFixed(0)} ms`);
const heldByGap = (r: (typeof runs)[number]) => r.prev !== null && r.due.getTime() - r.prev.getTime() < MIN_GAP_MS;
const free = runs.filter((r) => !heldByGap(r)).map((r) => r.lag_ms);
const calmFree = runs.filter((r) => !heldByGap(r) && !events.some((e) => e.at >= r.due.getTime() - 20_000 && e.at <= r.started.getTime())).map((r) => r.lag_ms);
console.log(`due lag, ${free.length} runs not due within 60 s of their previous run: p50 ${percentile(free, 50).toFixed(0)} ms, p99 ${percentile(free, 99).toFixed(0)} ms; of those with no chaos event: ${calmFree.length} runs, p99 ${percentile(calmFree, 99).toFixed(0)} ms`);

await pool.end();
llm.close();
const oracleOk = values.only === 'classic' ? true : await oracle();
await server.stop();
process.exit(results.every(([ok]) => ok) && oracleOk ? 0 : 1);
