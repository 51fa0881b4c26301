// Child process for bench-reactor's memory figure. Plain JavaScript on the
// built daemon (dist/), as `npm start` runs it: it loads the daemon's whole
// module graph (pg, pino, prom-client, undici, ...), then holds N missions
// the way the reactor does (a wheel entry with due time and version, plus
// the version map; with a second argument A, also the mission -> agent map
// and A agents in the agent gates) and prints the process RSS. Run `npm run
// build` first.
import { AgentGates } from '../../dist/reactor/agent-gates.js';
import { TimerWheel } from '../../dist/reactor/timer-wheel.js';
await import('../../dist/daemon.js');

const n = Number(process.argv[2]);
const agents = Number(process.argv[3] ?? 0);
const wheel = new TimerWheel({ onFire: () => {} });
const versions = new Map();
const agentOf = new Map();
const gates = new AgentGates({ now: () => Date.now(), onRelease: () => {} });
// Agent refs are 53-bit numbers in the daemon; spread them the same way.
const refs = Array.from({ length: agents }, (_, a) => Math.floor(Math.random() * 2 ** 53));
for (const [a, ref] of refs.entries()) gates.update(ref, a % 64, { version: 1, gate: 'active', maxConcurrent: 1, budget: 100_000 });
const now = Date.now();
for (let i = 1; i <= n; i++) {
  const due = now + 60_000 + Math.floor(Math.random() * 30 * 86_400_000);
  wheel.schedule(i, due, { dueMs: due, version: 1 });
  versions.set(i, 1);
  if (agents) agentOf.set(i, refs[i % agents]);
}
globalThis.gc?.();
console.log(JSON.stringify({ n: wheel.size, rssMb: process.memoryUsage().rss / 2 ** 20, heapMb: process.memoryUsage().heapUsed / 2 ** 20 }));
wheel.close();
gates.close();
process.exit(0);
