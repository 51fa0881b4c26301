// The memory and cold-start figures of issue 13, on the real thing: the
// built daemon (`node dist/main.js`, as `npm start` and the image run it)
// as a child process against a database holding N mission snapshots. It
// reports the time from spawn to the "schedule loaded" log line (process
// start, migrations checked, LISTEN, partitions, the paged load, the
// wheel), the RSS once scheduled, and the peak RSS of the whole start
// (VmHWM: the load's transient rows count).

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type pg from 'pg';

export interface DaemonMemory {
  missions: number;
  coldStartMs: number;
  rssMb: number;
  peakRssMb: number;
  /** V8 heap in use, from the daemon's own /metrics */
  heapUsedMb: number;
}

const statusMb = (pid: number, field: 'VmRSS' | 'VmHWM') => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

/**
 * Writes snapshots from..to straight into mana_ai.mission_snapshots (as the
 * schema owner), spread over 100,000 users, due at minutes over the next 30
 * days. What the daemon loads is exactly these rows; going through
 * sync_changes and the trigger would measure the same load but take 7
 * minutes per million rows (the trigger's figures are bench:trigger's).
 */
export async function insertManySnapshots(pool: pg.Pool, from: number, to: number, batch = 100_000, opts: { dueInPast?: boolean } = {}): Promise<void> {
  for (let a = from; a <= to; a += batch) {
    await pool.query(
      `INSERT INTO mana_ai.mission_snapshots (user_id, mission_id, record, state, next_run_at)
       SELECT 'mem-user-' || (g % 100000), 'mem-' || g,
              jsonb_build_object('id', 'mem-' || g, 'title', 'm' || g, 'objective', 'bench', 'conceptMarkdown', '', 'inputs', '[]'::jsonb, 'iterations', '[]'::jsonb,
                                 'state', 'active', 'cadence', jsonb_build_object('kind', 'daily', 'atHour', 9, 'atMinute', 0)),
              'active', CASE WHEN $3 THEN now() - interval '1 minute' ELSE now() + interval '1 hour' + (g % 43200) * interval '1 minute' END
         FROM generate_series($1::int, $2::int) g`,
      [a, Math.min(to, a + batch - 1), opts.dueInPast === true],
    );
  }
  await pool.query('VACUUM ANALYZE mana_ai.mission_snapshots');
}

/** The node flags `npm start` (and the image's CMD) run the daemon with. */
export function startFlags(): string[] {
  const start = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start;
  return start.split(/\s+/).filter((a) => a.startsWith('--'));
}

/** Starts `node dist/main.js` on `url`, waits until its schedule is loaded, measures, stops it. Run `npm run build` first. */
export async function measureBuiltDaemon(url: string, opts: { settleMs?: number; timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<DaemonMemory> {
  const started = performance.now();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? startFlags()), 'dist/main.js'], {
    env: { PATH: process.env['PATH'] ?? '', SYNC_DATABASE_URL: url, MANA_LLM_URL: 'http://127.0.0.1:9', PORT: '0', MANA_AI_LOG_LEVEL: 'info', MANA_AI_WORKER_ID: 'bench-memory' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr.on('data', (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    let port = 0;
    const loaded = await new Promise<{ missions: number; ms: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the daemon did not load its schedule within ${opts.timeoutMs ?? 120_000} ms`)), opts.timeoutMs ?? 120_000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        let o: { msg?: string; reason?: string; missions?: number; port?: number };
        try {
          o = JSON.parse(line);
        } catch {
          return;
        }
        if (o.msg === 'mana-ai started' && o.port) port = o.port;
        if (o.msg === 'schedule loaded' && o.reason === 'start') {
          clearTimeout(timer);
          resolve({ missions: o.missions ?? 0, ms: performance.now() - started });
        }
      });
      void exited.then((code) => reject(new Error(`the daemon exited (${code}) before loading: ${stderr.join('')}`)));
    });
    // measured once the start's garbage has had a chance to go (no forced GC: as deployed)
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 3_000));
    const rssMb = statusMb(child.pid!, 'VmRSS');
    const peakRssMb = statusMb(child.pid!, 'VmHWM');
    const metrics = port ? await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '') : '';
    const heap = /^mana_ai_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(metrics);
    return { missions: loaded.missions, coldStartMs: loaded.ms, rssMb, peakRssMb, heapUsedMb: heap ? Number(heap[1]) / 2 ** 20 : NaN };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
