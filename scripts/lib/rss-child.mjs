// Child process for bench-reactor's memory figure. Plain JavaScript on the
// built daemon (dist/), as `npm start` runs it: it loads the daemon's whole
// module graph (pg, pino, prom-client, undici, ...), then holds N missions
// the way the reactor does (a wheel entry with due time and version, plus
// the version map) and prints the process RSS. Run `npm run build` first.
import { TimerWheel } from '../../dist/reactor/timer-wheel.js';
await import('../../dist/daemon.js');

const n = Number(process.argv[2]);
const wheel = new TimerWheel({ onFire: () => {} });
const versions = new Map();
const now = Date.now();
for (let i = 1; i <= n; i++) {
  const due = now + 60_000 + Math.floor(Math.random() * 30 * 86_400_000);
  wheel.schedule(i, due, { dueMs: due, version: 1 });
  versions.set(i, 1);
}
globalThis.gc?.();
console.log(JSON.stringify({ n: wheel.size, rssMb: process.memoryUsage().rss / 2 ** 20, heapMb: process.memoryUsage().heapUsed / 2 ** 20 }));
wheel.close();
process.exit(0);
