// The liveness oracle (issue 18): daemons as the runtime role, and chaos
// that review found to strand missions, then judged from the database alone.
//
// For `seconds` it randomly: terminates work-pool backends in the middle of
// a transaction; sets and clears lock_timeout for the runtime role while
// holding snapshot row locks; hard-deletes and re-creates agents; pauses and
// resumes them; moves the due times of missions that are due; joins a daemon
// and stops one (SIGTERM). A writer keeps editing missions. Then it checks:
//   1. every active mission of an active (or absent) agent whose due time is
//      more than 15 s past has run for it or waits for a stated reason: a
//      claim in flight, a retry after a failure outside the mission, the
//      minimum gap between runs, its agent's other run in flight, parked;
//   2. no daemon process exited that was not told to stop;
//   3. `mana-ai-watch` backends never outnumbered the daemons alive (sampled
//      every 250 ms);
//   4. no (mission, due time) was asked of the LLM twice (no daemon dies in
//      this scenario; the kept plan of sql/migrations/020_baseline.sql is written on a retry).
// Used by `npm run chaos` (long form) and test/liveness-oracle.test.ts
// (short form). It never kills a daemon with SIGKILL: that is the classic
// chaos run's job, and a killed daemon's runs are legitimately asked again.

import { createServer } from 'node:http';
import pg from 'pg';
import { spawnDaemon, type DaemonProcess } from '../../test/harness/daemon-process.js';
import { mulberry32 } from './prng.js';

export interface OracleOptions {
  /** superuser URL of the database (migrated, runtime role granted) */
  adminUrl: string;
  /** the runtime role's URL: what the daemons connect with */
  daemonUrl: string;
  /** the runtime role's name (for ALTER ROLE … SET lock_timeout) */
  runtimeRole: string;
  seconds: number;
  daemons?: number;
  missions?: number;
  agents?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface OracleResult {
  ok: boolean;
  lines: string[];
  stats: Record<string, number>;
}

const GAP_MS = 60_000;

export async function runLivenessOracle(o: OracleOptions): Promise<OracleResult> {
  const nDaemons = o.daemons ?? 3;
  const nMissions = o.missions ?? 60;
  const nAgents = o.agents ?? 6;
  const prng = mulberry32(o.seed ?? 11);
  const rand = prng.next;
  const between = prng.between;
  const t0 = Date.now();
  const say = (s: string) => o.log?.(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}`);
  const stats: Record<string, number> = {
    terminated: 0, lockTimeouts: 0, agentsRecreated: 0, agentsToggled: 0, moved: 0, joins: 0, stops: 0, writes: 0, watchSamples: 0,
  };
  const dbName = new URL(o.adminUrl).pathname.slice(1);

  const admin = new pg.Pool({ connectionString: o.adminUrl, max: 6, application_name: 'oracle' });
  admin.on('error', () => {});

  // --- the LLM stand-in: records which mission each request was for
  const asked = new Map<string, number>();
  const llm = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = /(orc-\d+) Orakel/.exec(body)?.[1] ?? 'unknown';
      asked.set(id, (asked.get(id) ?? 0) + 1);
      if (id === 'unknown' && asked.get(id) === 1) say(`an LLM request without a mission id: ${body.slice(0, 300)}`);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { content: '{"summary":"orakel","steps":[]}' } }], usage: { total_tokens: 10 } }));
      }, between(5, 60));
    });
  });
  await new Promise<void>((r) => llm.listen(0, '127.0.0.1', r));
  const llmUrl = `http://127.0.0.1:${(llm.address() as { port: number }).port}`;

  // --- writes as mana-sync does them
  const iso = (ms: number) => new Date(ms).toISOString();
  async function write(user: string, table: 'aiMissions' | 'agents', id: string, op: 'insert' | 'update' | 'delete', data: Record<string, unknown>): Promise<void> {
    const c = await admin.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('app.current_user_id', $1, true)`, [user]);
      const stamp = iso(Date.now());
      const fts = op === 'update' ? Object.fromEntries(Object.keys(data).map((k) => [k, stamp])) : {};
      await c.query(
        `INSERT INTO sync_changes (app_id, table_name, record_id, user_id, op, data, field_timestamps, client_id)
         VALUES ('ai', $1, $2, $3, $4, $5, $6, 'oracle-writer')`,
        [table, id, user, op, JSON.stringify(data), JSON.stringify(fts)],
      );
      await c.query('COMMIT');
      stats['writes']! += 1;
    } catch {
      await c.query('ROLLBACK').catch(() => {});
    } finally {
      c.release();
    }
  }
  const agentOf = (i: number) => ({ user: `orc-user-${i % nAgents}`, id: `orc-agent-${i % nAgents}` });
  const agentRecord = (id: string, state: string) => {
    const now = iso(Date.now());
    return { id, createdAt: now, updatedAt: now, name: id, role: 'orakel', state, maxConcurrentMissions: 1 + (Number(id.split('-').pop()) % 3), policy: { tools: {}, defaultForAi: 'propose' } };
  };
  for (let a = 0; a < nAgents; a++) await write(agentOf(a).user, 'agents', agentOf(a).id, 'insert', agentRecord(agentOf(a).id, 'active'));
  const missions: { user: string; id: string }[] = [];
  for (let i = 0; i < nMissions; i++) {
    const withAgent = i % 2 === 0;
    const user = withAgent ? agentOf(i / 2).user : `orc-user-solo-${i % 7}`;
    const id = `orc-${i}`;
    missions.push({ user, id });
    const now = iso(Date.now());
    await write(user, 'aiMissions', id, 'insert', {
      id, title: `${id} Orakel`, objective: 'liveness', conceptMarkdown: '', inputs: [], iterations: [], createdAt: now, updatedAt: now,
      cadence: { kind: 'interval', everyMinutes: 1 }, state: 'active', nextRunAt: iso(Date.now() + between(1_000, 15_000)),
      ...(withAgent ? { agentId: agentOf(i / 2).id } : {}),
    });
  }
  say(`${nAgents} agents, ${nMissions} missions written`);

  // --- daemons
  const alive = new Set<DaemonProcess>();
  /** daemons spawned that have not said "started" yet (they may already watch) */
  let starting = 0;
  const stopping = new Set<DaemonProcess>();
  const unexpected: string[] = [];
  let names = 0;
  const env = { MANA_AI_SHUTDOWN_GRACE_MS: '5000' };
  async function join(): Promise<void> {
    starting += 1;
    const d = await spawnDaemon(`orc-${names++}`, o.daemonUrl, llmUrl, env).finally(() => {
      starting -= 1;
    });
    alive.add(d);
    void d.exited.then((code) => {
      alive.delete(d);
      if (!stopping.has(d)) unexpected.push(`${d.name} exited with ${code}`);
    });
  }
  async function stopOne(): Promise<void> {
    const d = [...alive].find((x) => !stopping.has(x));
    if (!d) return;
    stopping.add(d);
    d.kill('SIGTERM');
    await d.exited;
  }
  for (let i = 0; i < nDaemons; i++) await join();
  say(`${nDaemons} daemons up`);

  // --- watch backends against daemons alive, sampled
  let watchViolations = 0;
  let watchMax = 0;
  const sampler = setInterval(() => {
    const n = alive.size + starting;
    void admin
      .query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai-watch'`)
      .then(({ rows }) => {
        stats['watchSamples']! += 1;
        const w = rows[0]!.n as number;
        watchMax = Math.max(watchMax, w);
        // a daemon counts from its spawn until its exit is seen
        if (w > Math.max(n, alive.size + starting)) watchViolations += 1;
      })
      .catch(() => {});
  }, 250);

  // --- the writer
  const endAt = Date.now() + o.seconds * 1000;
  const writer = (async () => {
    while (Date.now() < endAt) {
      const m = missions[Math.floor(rand() * missions.length)]!;
      const k = rand();
      if (k < 0.6) await write(m.user, 'aiMissions', m.id, 'update', { title: `${m.id} Orakel ${stats['writes']}` });
      else if (k < 0.8) await write(m.user, 'aiMissions', m.id, 'update', { nextRunAt: iso(Date.now() + between(500, 10_000)) });
      else if (k < 0.9) await write(m.user, 'aiMissions', m.id, 'update', { state: 'paused' });
      else await write(m.user, 'aiMissions', m.id, 'update', { state: 'active', nextRunAt: iso(Date.now() + between(500, 10_000)) });
      await new Promise((r) => setTimeout(r, between(40, 200)));
    }
  })();

  // --- chaos
  const agentState = new Map<string, 'active' | 'paused' | 'gone'>();
  const lockHolders: Promise<void>[] = [];
  let lockTimeoutSet = false;
  // The kinds of chaos take turns (random timing and targets), so even a
  // short run has every kind several times. A backend is only terminated
  // when one is caught inside a transaction (they last milliseconds): on a
  // busy machine a short run can miss every time, so when the time is up
  // without one, only that kind goes on, for at most 15 s more.
  const graceEnd = endAt + 15_000;
  for (let step = 0; Date.now() < endAt || (stats['terminated'] === 0 && Date.now() < graceEnd); step++) {
    await new Promise((r) => setTimeout(r, between(150, 700)));
    const kind = Date.now() < endAt ? step % 6 : 0;
    try {
      if (kind === 0) {
        // a work-pool backend inside a transaction: watched for up to 3 s (transactions are short)
        for (let tries = 0; tries < 600; tries++) {
          const { rows } = await admin.query(
            `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
              WHERE datname = current_database() AND application_name = 'mana-ai' AND xact_start IS NOT NULL
                AND pid <> pg_backend_pid() LIMIT 1`,
          );
          if (rows.length > 0) {
            stats['terminated']! += 1;
            break;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      } else if (kind === 1) {
        // lock_timeout for the runtime role's new sessions, and a held snapshot lock to run into
        lockTimeoutSet = !lockTimeoutSet;
        await admin.query(lockTimeoutSet ? `ALTER ROLE ${o.runtimeRole} IN DATABASE ${dbName} SET lock_timeout = '30ms'` : `ALTER ROLE ${o.runtimeRole} IN DATABASE ${dbName} RESET lock_timeout`);
        // new sessions see it: end the idle ones so the pools reconnect
        await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai' AND state = 'idle'`);
        const m = missions[Math.floor(rand() * missions.length)]!;
        lockHolders.push((async () => {
          const c = await admin.connect();
          try {
            await c.query('BEGIN');
            await c.query(`SELECT 1 FROM mana_ai.mission_snapshots WHERE mission_id = $1 AND user_id = $2 FOR UPDATE`, [m.id, m.user]);
            await new Promise((r) => setTimeout(r, between(100, 800)));
            await c.query('COMMIT');
          } finally {
            c.release();
          }
        })().catch(() => {}));
        stats['lockTimeouts']! += 1;
      } else if (kind === 2) {
        const a = agentOf(Math.floor(rand() * nAgents));
        const st = agentState.get(a.id) ?? 'active';
        if (st === 'gone') {
          await write(a.user, 'agents', a.id, 'insert', agentRecord(a.id, rand() < 0.5 ? 'active' : 'paused'));
          agentState.set(a.id, 'active');
        } else {
          await write(a.user, 'agents', a.id, 'delete', {}); // hard delete
          agentState.set(a.id, 'gone');
        }
        stats['agentsRecreated']! += 1;
      } else if (kind === 3) {
        const a = agentOf(Math.floor(rand() * nAgents));
        const st = agentState.get(a.id) ?? 'active';
        if (st !== 'gone') {
          const next = st === 'active' ? 'paused' : 'active';
          await write(a.user, 'agents', a.id, 'update', { state: next });
          agentState.set(a.id, next);
          stats['agentsToggled']! += 1;
        }
      } else if (kind === 4) {
        // one of the missions due soonest (queued, or about to be) moves
        const { rows } = await admin.query(
          `SELECT user_id, mission_id FROM mana_ai.mission_snapshots WHERE state = 'active' AND NOT deleted AND next_run_at IS NOT NULL
            ORDER BY next_run_at LIMIT 5`,
        );
        const m = rows[Math.floor(rand() * rows.length)];
        if (m) {
          await write(m.user_id, 'aiMissions', m.mission_id, 'update', { nextRunAt: iso(Date.now() + between(200, 5_000)) });
          stats['moved']! += 1;
        }
      } else if (alive.size > nDaemons) {
        await stopOne();
        stats['stops']! += 1;
      } else {
        await join();
        stats['joins']! += 1;
      }
    } catch (error) {
      say(`chaos step failed: ${(error as Error).message}`);
    }
  }
  await writer;
  await Promise.all(lockHolders);
  if (lockTimeoutSet) await admin.query(`ALTER ROLE ${o.runtimeRole} IN DATABASE ${dbName} RESET lock_timeout`);
  say(`chaos over: ${JSON.stringify(stats)}`);

  // --- judged from the database alone
  const { rows: stranded } = await admin.query(`
    WITH m AS (
      SELECT s.mission_key, s.mission_id, s.user_id, s.agent_id, s.next_run_at
        FROM mana_ai.mission_snapshots s
        LEFT JOIN mana_ai.agent_snapshots a ON a.agent_key = mana_ai.mission_key(s.user_id, s.agent_id)
       WHERE s.state = 'active' AND NOT s.deleted AND s.next_run_at < now() - interval '15 seconds'
         AND (s.agent_id IS NULL OR a.aid IS NULL OR a.gate = 'active'))
    SELECT m.mission_id, m.next_run_at, r.status, r.error,
           (SELECT max(x.started_at) FROM mana_ai.mission_runs x WHERE x.mission_key = m.mission_key AND x.due_at <> m.next_run_at) AS last_start,
           (SELECT count(*)::int FROM mana_ai.mission_runs y
             WHERE m.agent_id IS NOT NULL AND y.agent_key = mana_ai.mission_key(m.user_id, m.agent_id) AND y.status = 'running') AS agent_running,
           EXISTS (SELECT 1 FROM mana_ai.parked_missions p WHERE p.user_id = m.user_id AND p.mission_id = m.mission_id) AS parked
      FROM m LEFT JOIN mana_ai.mission_runs r ON r.mission_key = m.mission_key AND r.due_at = m.next_run_at`);
  const reasons = new Map<string, number>();
  const noFuture: string[] = [];
  for (const r of stranded) {
    let reason: string | null = null;
    if (r.parked) reason = 'parked after failing repeatedly';
    else if (r.status === 'running') reason = 'claimed';
    else if (r.status === 'released') reason = 'retry after a failure outside the mission';
    else if (r.last_start && Date.now() - r.last_start.getTime() < GAP_MS + 15_000) reason = 'minimum gap between runs';
    else if (r.agent_running > 0) reason = 'its agent runs another mission';
    if (reason) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    else noFuture.push(`${r.mission_id} due ${r.next_run_at.toISOString()} (run: ${r.status ?? 'none'})`);
  }
  const { rows: runRows } = await admin.query(`SELECT mission_id, count(*)::int AS n FROM mana_ai.mission_runs GROUP BY mission_id`);
  const runsOf = new Map<string, number>(runRows.map((r) => [r.mission_id as string, r.n as number]));
  const twice = [...asked].filter(([id, n]) => n > (runsOf.get(id) ?? 0)).map(([id, n]) => `${id}: asked ${n}, ${runsOf.get(id) ?? 0} due times claimed`);

  // --- down
  clearInterval(sampler);
  for (const d of alive) stopping.add(d);
  for (const d of [...alive]) d.kill('SIGTERM');
  await Promise.all([...alive].map((d) => d.exited));
  await new Promise<void>((r) => llm.close(() => r()));
  await admin.end();

  const totalAsked = [...asked.values()].reduce((a, b) => a + b, 0);
  stats['llmRequests'] = totalAsked;
  stats['watchMax'] = watchMax;
  const lines: [boolean, string][] = [
    [noFuture.length === 0, `1. every active mission of an active agent more than 15 s past due has run or waits for a reason: ${stranded.length} waiting (${[...reasons].map(([k, v]) => `${k}: ${v}`).join('; ') || 'none'}), ${noFuture.length} without a future${noFuture.length ? `: ${noFuture.slice(0, 5).join(', ')}` : ''}`],
    [unexpected.length === 0, `2. no daemon process exited unasked: ${unexpected.length ? unexpected.join('; ') : `none (${names} started, ${stats['stops']} stopped)`}`],
    [watchViolations === 0 && stats['watchSamples']! > 0, `3. watch backends never outnumbered the daemons alive: ${watchViolations} of ${stats['watchSamples']} samples over, at most ${watchMax}`],
    [twice.length === 0 && totalAsked > 0, `4. no (mission, due time) asked of the LLM twice: ${totalAsked} requests${twice.length ? `; ${twice.slice(0, 5).join(', ')}` : ''}`],
  ];
  return { ok: lines.every(([ok]) => ok), lines: lines.map(([ok, l]) => `${ok ? 'ok  ' : 'FAIL'} ${l}`), stats };
}
