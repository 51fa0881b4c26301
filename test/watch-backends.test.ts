// At most one watch backend per daemon, ever (issue 18, item 4). A watch
// connection waits in pg_advisory_lock for its peer's membership slot; a
// backend blocked there does not read its socket, so closing the client
// alone left it waiting until the watched peer died: five join/leave
// cycles of a third daemon left 11 `mana-ai-watch` backends. Now the daemon
// terminates the backend it re-targets away from, and a daemon that dies
// while it watches has its backend ended by the server's connection check.

import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createTestDatabase, type TestDb } from './harness/db.js';
import { startLlmServer, type LlmServer } from './harness/llm-server.js';
import { startTestDaemon, type TestDaemon } from './harness/daemon.js';
import { spawnDaemon, type DaemonProcess } from './harness/daemon-process.js';
import { eventually } from './harness/wait.js';

let db: TestDb;
let llm: LlmServer;
const daemons: TestDaemon[] = [];
const procs: DaemonProcess[] = [];

before(async () => {
  db = await createTestDatabase();
  llm = await startLlmServer();
});
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await Promise.all(daemons.map((d) => d.stop()));
  await llm?.close();
  await db?.drop();
});

const watchBackends = async () =>
  Number((await db.pool.query(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'mana-ai-watch'`)).rows[0].count);
const members = async () =>
  Number((await db.pool.query(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = 1634271232::oid AND objsubid = 2
                                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0].count);

it('five join/leave cycles of a third daemon leave one watch backend per daemon alive', async () => {
  daemons.push(await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'wa' }));
  daemons.push(await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: 'wb' }));
  await eventually(async () => (await watchBackends()) === 2, 'two daemons watch each other');
  let most = 0;
  for (let i = 0; i < 5; i++) {
    const c = await startTestDaemon(db.daemonUrl, llm.url, { MANA_AI_WORKER_ID: `wc${i}` });
    await eventually(async () => (await members()) === 3 && (most = Math.max(most, await watchBackends())) === 3, `cycle ${i}: three daemons, three watches`);
    await c.stop();
    await eventually(async () => (await members()) === 2, `cycle ${i}: the third daemon left`);
    await eventually(async () => (await watchBackends()) === 2, `cycle ${i}: back to two watch backends (was ${await watchBackends()})`);
  }
  assert.equal(most, 3, 'never more than one watch backend per daemon');
  // the two daemons re-target their watches as the third leaves: settled, one each
  await eventually(async () => (await watchBackends()) === 2, 'one watch backend per daemon alive at the end');
});

it('a daemon killed while it watches: its watch backend ends too', async () => {
  const p = await spawnDaemon('wk', db.daemonUrl, llm.url);
  procs.push(p);
  await eventually(async () => (await members()) === 3 && (await watchBackends()) === 3, 'the process joined and watches');
  p.kill('SIGKILL');
  await p.exited;
  await eventually(async () => (await members()) === 2, 'its membership ended with its session');
  // The server's connection check (2 s) ends the orphaned lock wait.
  await eventually(async () => (await watchBackends()) === 2, 'one watch backend per daemon alive', 20_000);
});
