// A database for the benchmarks: BENCH_DATABASE_URL's server when set,
// else an embedded PostgreSQL, with mana-sync's table and our migrations.

import { randomBytes } from 'node:crypto';
import { availableParallelism, totalmem } from 'node:os';
import pg from 'pg';
import { createPool } from '../../src/db/pool.js';
import { startEmbeddedPostgres } from './embedded-pg.js';
import { createSyncDatabase } from './sync-database.js';

export interface BenchDb {
  url: string;
  pool: pg.Pool;
  serverUrl: string;
  close(): Promise<void>;
}

export async function openBenchDatabase(): Promise<BenchDb> {
  const external = process.env['BENCH_DATABASE_URL'];
  const server = external ? null : await startEmbeddedPostgres();
  const serverUrl = external ?? server!.url;
  const name = `mana_bench_${randomBytes(4).toString('hex')}`;
  const url = await createSyncDatabase(serverUrl, name);
  const pool = createPool({ connectionString: url, applicationName: 'mana-ai-bench', max: 8 });
  return {
    url,
    pool,
    serverUrl,
    async close() {
      await pool.end();
      const a = new pg.Client({ connectionString: serverUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
      await server?.stop();
    },
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export function machine(): string {
  return `${process.platform} ${process.arch}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}
