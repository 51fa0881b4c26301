// `npm test`: one embedded Postgres for the whole run (or TEST_DATABASE_URL),
// then Node's test runner over every test/**/*.test.ts file, each file in
// its own process with its own database. The files run as JavaScript that
// esbuild transpiled once for the run (scripts/lib/test-build.ts), not
// through tsx in every process. The server and its directory are removed
// when the run ends, fails or is interrupted.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedServer } from './lib/embedded-pg.js';
import { scanForLeaks } from './lib/log-leak-scan.js';
import { buildTests, builtPath, tsFiles } from './lib/test-build.js';

const filter = process.argv.slice(2);
let files = tsFiles('test').filter((f) => f.endsWith('.test.ts'));
if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filter.join(' ')}`);
  process.exit(1);
}

await buildTests();

let server: EmbeddedServer | undefined;
const env = { ...process.env };
if (process.env['TEST_DATABASE_URL']) {
  env['MANA_AI_TEST_SERVER_URL'] = process.env['TEST_DATABASE_URL'];
  console.log('tests: using TEST_DATABASE_URL');
} else {
  server = await startEmbeddedPostgres();
  env['MANA_AI_TEST_SERVER_URL'] = server.url;
  env['MANA_AI_TEST_SERVER_DIR'] = server.dir;
  console.log(`tests: embedded PostgreSQL on port ${server.port}`);
}

// Every test daemon's log lines and every secret a test made land here; the
// scan after the run fails the suite if any log line holds any secret.
const logDir = mkdtempSync(join(tmpdir(), 'mana-ai-test-logs-'));
env['MANA_AI_TEST_LOG_DIR'] = logDir;

let child: ReturnType<typeof spawn> | undefined;
let exiting = false;
async function finish(code: number, scan = false): Promise<never> {
  if (!exiting) {
    exiting = true;
    await server?.stop();
    if (scan) {
      const r = scanForLeaks(logDir);
      if (r.leaks.length > 0) {
        for (const l of r.leaks) console.error(`log leak: a ${l.kind} appears in ${l.file}`);
        code = code || 1;
      } else {
        console.log(`log leak scan: ${r.lines} daemon log lines, ${r.secrets} registered secrets, no secret in any line`);
      }
    }
    rmSync(logDir, { recursive: true, force: true });
  }
  process.exit(code);
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    child?.kill('SIGTERM');
    void finish(130);
  });
}

// Three files at a time on two cores: many tests spend their time waiting
// (a stopped server, a 30 s race, a lease), so a third keeps the cores
// busy; TEST_CONCURRENCY=1 runs one at a time.
const concurrency = process.env['TEST_CONCURRENCY'] ?? '3';
// Every test ends: one that hangs fails after TEST_TIMEOUT_MS (default 3 min)
// instead of holding CI, and the whole run is cut after TEST_RUN_TIMEOUT_MS.
const testTimeoutMs = process.env['TEST_TIMEOUT_MS'] ?? '180000';
const runTimeoutMs = Number(process.env['TEST_RUN_TIMEOUT_MS'] ?? 20 * 60_000);
// Files whose first lines say "runs alone" hold a time bound an issue asks
// for: they run after the others, one at a time, so no other test's
// daemons and databases compete with them for the two cores.
// Each file's first lines, read once: the two markers below live there.
const heads = new Map(files.map((f) => [f, readFileSync(f, 'utf8').slice(0, 2_000)]));
const alone = files.filter((f) => /runs alone/.test(heads.get(f)!));
// Files whose first lines say "Starts first (about N s" go first, the
// longest first: the runner starts files in the order given, so one of a
// minute started last would run alone at the end while a core idles.
const startsFirst = new Map(files.map((f) => [f, Number(/Starts first \(about (\d+) s/.exec(heads.get(f)!)?.[1] ?? 0)]));
const together = files.filter((f) => !alone.includes(f)).sort((a, b) => startsFirst.get(b)! - startsFirst.get(a)!);
const phase = (list: string[], parallel: string) =>
  new Promise<number>((resolve) => {
    if (list.length === 0) return resolve(0);
    child = spawn(process.execPath, ['--enable-source-maps', '--test', `--test-concurrency=${parallel}`, `--test-timeout=${testTimeoutMs}`, ...list.map((f) => builtPath(f))], { env, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
void (async () => {
  const first = await phase(together, concurrency);
  const second = exiting ? 1 : await phase(alone, '1');
  await finish(first || second, true);
})();
setTimeout(() => {
  console.error(`test run still going after ${runTimeoutMs} ms: stopping it (TEST_RUN_TIMEOUT_MS)`);
  child?.kill('SIGTERM');
  void finish(1);
}, runTimeoutMs).unref();
