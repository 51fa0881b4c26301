import { Writable } from 'node:stream';
import { openBenchDatabase } from './lib/bench-db.js';
import { insertManySnapshots } from './lib/daemon-memory.js';
import { loadConfig } from '../src/config.js';
import { startDaemon } from '../src/daemon.js';
import { createLogger } from '../src/log.js';
import { createRuntimeRole } from './lib/sync-database.js';
const db = await openBenchDatabase();
const url = await createRuntimeRole(db.url);
await insertManySnapshots(db.pool, 1, 1_000_000);
for (let k = 0; k < 2; k++) {
  const lines: string[] = [];
  const t = performance.now();
  const d = await startDaemon(loadConfig({ PORT: '0', SYNC_DATABASE_URL: url, MANA_LLM_URL: 'http://127.0.0.1:9', MANA_AI_WORKER_ID: 'cold' + k }),
    createLogger({ level: 'info', destination: new Writable({ write: (c, _e, cb) => { lines.push(String(c)); cb(); } }) }));
  await new Promise<void>((resolve) => { const i = setInterval(() => { if (lines.some((l) => l.includes('schedule loaded'))) { clearInterval(i); resolve(); } }, 5); });
  console.log('loaded in', (performance.now() - t).toFixed(0), 'ms;', lines.find((l) => l.includes('schedule loaded'))!.slice(0, 200));
  await d.stop();
}
await db.close();
